#!/usr/bin/env python3
"""The case report in real headless Chromium: it must render with no console message and no
network request, and a screenshot of each section is kept for a person to look at.

Usage: report_chromium.py TRAWL OUTDIR

Builds a lake from the seeded week with planted incidents (and a planted gap in the firewall
log), writes the report in Japanese and in English, loads each in Chromium with a network log,
and fails on any console message or any request the page made. The checker is first run on a
page that does make a request and a console error, so a checker that sees nothing fails too.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

SECTIONS = ["case", "sources", "findings", "overview", "timeline"]


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def load(browser, page, work, extra=()):
    """Loads `page`; returns (console lines, URLs the page requested)."""
    netlog = os.path.join(work, "net.json")
    if os.path.exists(netlog):
        os.remove(netlog)
    args = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        # Nothing resolves: a request that slipped through could still not reach anything.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--enable-logging=stderr", "--v=0", f"--log-net-log={netlog}",
        *extra, "file://" + os.path.abspath(page),
    ]
    run = subprocess.run(args, capture_output=True, text=True, timeout=180)
    console = [l for l in run.stderr.splitlines() if ":CONSOLE" in l]
    with open(netlog) as f:
        log = json.load(f)
    kinds = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    requested = set()
    for e in log["events"]:
        p = e.get("params", {})
        if kinds.get(e["type"]) != "URL_REQUEST_START_JOB" or "url" not in p:
            continue
        # The browser's own background requests have no initiating page.
        if p.get("initiator") == "not an origin":
            continue
        if not p["url"].startswith(("file:", "data:")):
            requested.add(p["url"])
    return console, sorted(requested), run.stdout


def main():
    trawl, out = sys.argv[1], sys.argv[2]
    browser = chromium()
    if browser is None:
        print("skipping the Chromium check of the report: chromium is not installed")
        return 0
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="trawl-report-")
    try:
        bad = os.path.join(work, "bad.html")
        with open(bad, "w") as f:
            f.write('<!DOCTYPE html><html><body><img src="http://example.invalid/x.png">'
                    '<script>console.error("boom")</script></body></html>')
        console, requested, _ = load(browser, bad, work, ["--dump-dom"])
        assert console and requested, f"the checker sees nothing: {console} {requested}"

        logs = os.path.join(work, "logs")
        subprocess.run(["cargo", "run", "--locked", "--quiet", "--example", "generate", "--", "--incidents",
                        "--bytes", "1M", "--out", logs], check=True, stdout=subprocess.DEVNULL)
        fw = os.path.join(logs, "firewall", "pfirewall.log")
        with open(fw) as f:
            lines = f.readlines()
        gap = ("2024-06-05 10:", "2024-06-05 11:", "2024-06-05 12:")
        with open(fw, "w") as f:
            f.writelines(l for l in lines if not l.startswith(gap))
        lake = os.path.join(work, "lake")
        subprocess.run([trawl, "ingest", logs, "--lake", lake, "--tz", "Asia/Tokyo", "-q"], check=True)
        failures = []
        for lang in ("ja", "en"):
            page = os.path.join(out, f"report-{lang}.html")
            subprocess.run([trawl, "report", "--lake", lake, "--lang", lang, "--user", "exfil.tanaka",
                            "-o", page, "--force"], check=True)
            console, requested, dom = load(browser, page, work, ["--dump-dom"])
            if console:
                failures.append(f"{page}: console: {console}")
            if requested:
                failures.append(f"{page}: network requests: {requested}")
            if '<section id="findings">' not in dom:
                failures.append(f"{page}: the findings section did not render")
            for s in SECTIONS:
                shot = os.path.join(out, f"{lang}-{s}.png")
                load(browser, page + "#" + s, work, ["--window-size=1200,2200", f"--screenshot={shot}"])
                if not os.path.exists(shot):
                    failures.append(f"{shot}: no screenshot")
        if failures:
            print("\n".join(failures))
            return 1
        print(f"report rendered in Chromium without console messages or requests; screenshots in {out}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
