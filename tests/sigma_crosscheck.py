#!/usr/bin/env python3
"""Cross-checks trawl's Sigma compiler against pySigma's SQLite backend, an independent
implementation, on the same rows.

Writes a small proxy log whose lines hit (or narrowly miss) the community's proxy rules, ingests
it with trawl, exports the rows under Sigma's field names into SQLite (text compared
case-insensitively, as Sigma says), runs each rule's pySigma SQL there and `trawl detect --sigma`
over the lake, and compares the matching (file, line) pairs rule by rule. Rules pySigma cannot
convert are listed and left out. Exit 0 when every compared rule agrees, 1 otherwise.

Usage: sigma_crosscheck.py TRAWL_BINARY
"""

import csv
import json
import re
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection

ROOT = Path(__file__).resolve().parent.parent
COMMUNITY = ROOT.parent / "shared" / "sigma" / "rules"
LOGFORMAT = 'x %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt "%{User-Agent}>h"'
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"

# (method, url, server address, user agent): hits and near misses for the community's proxy rules.
LINES = [
    ("GET", "http://www.example.org/index.html", "93.184.216.34", CHROME),
    ("GET", "http://198.51.100.77/invoice.exe", "198.51.100.77", CHROME),
    ("GET", "http://dl.example.com/setup.exe", "93.184.216.35", CHROME),
    ("GET", "http://files.evil.top/a.zip", "203.0.113.20", CHROME),
    ("GET", "https://paste.ee/r/Xk3v", "203.0.113.21", CHROME),
    ("GET", "https://pastebin.com/raw/abc", "203.0.113.22", CHROME),
    ("GET", "https://www.pastebin.com/raw/abc", "203.0.113.22", CHROME),
    ("GET", "https://api.telegram.org/bot1/sendMessage", "149.154.167.220", CHROME),
    ("GET", "https://api.telegram.org/bot1/sendMessage", "149.154.167.220", "TelegramBot (like TwitterBot)"),
    ("GET", "https://Api.Telegram.Org/x", "149.154.167.220", "python-requests/2.31"),
    ("GET", "http://c2.example.net/cross.php?op=1", "198.51.100.7", CHROME),
    ("GET", "http://c2.example.net/cross.phpXop=1", "198.51.100.7", CHROME),
    ("GET", "http://www.example.com/", "93.184.216.34", "Mozila/5.0 (Windows NT 10.0)"),
    ("GET", "http://www.example.com/", "93.184.216.34", "x"),
    ("GET", "http://www.example.com/", "93.184.216.34", "X"),
    ("GET", "http://www.example.com/", "93.184.216.34", "Mozilla/3.0 (compatible; Acrobat 5.0; Windows)"),
    ("GET", "http://www.example.com/", "93.184.216.34", "-"),
    ("GET", "http://www.example.com/a.ps1", "93.184.216.34", "Mozilla/5.0 (Windows NT; Windows NT 10.0; ja-JP) WindowsPowerShell/5.1"),
    ("GET", "http://10.1.2.3/share/run.exe", "10.1.2.3", "Microsoft-WebDAV-MiniRedir/10.0.19045"),
    ("GET", "http://203.0.113.50/share/run.exe", "203.0.113.50", "Microsoft-WebDAV-MiniRedir/10.0.19045"),
    ("GET", "http://203.0.113.51/share/readme.txt", "203.0.113.51", "Microsoft-WebDAV-MiniRedir/10.0.19045"),
    ("GET", "http://www.example.com/", "93.184.216.34", "rclone/v1.66.0"),
    ("GET", "http://www.example.com/", "93.184.216.34", "Mozilla/5.0 sqlmap/1.7"),
    ("GET", "http://www.example.com/", "93.184.216.34", "Microsoft BITS/7.8"),
    ("GET", "http://update.example.xyz/x.exe", "203.0.113.60", "Microsoft BITS/7.8"),
    ("GET", "http://203.0.113.61/x.exe", "203.0.113.61", "Microsoft BITS/7.8"),
    ("POST", "https://vpn.example.com/+CSCOE+/logon.html", "203.0.113.70", CHROME),
    ("GET", "https://www.example.com/mgmt/tm/util/bash", "203.0.113.71", CHROME),
    ("POST", "https://www.example.com/mgmt/tm/util/bash", "203.0.113.71", CHROME),
    ("GET", "http://www.example.com/Main.class", "93.184.216.34", "Java/1.8.0_301"),
    ("GET", "http://www.example.com/favicon.ico", "93.184.216.34", CHROME),
    ("CONNECT", "login.example.com:443", "93.184.216.34", CHROME),
    ("GET", "http://ipfs.io/ipfs/QmXyz/login.html", "203.0.113.80", CHROME),
    ("GET", "http://www.example.com/a%20b_c?x=1", "-", CHROME),
    ("GET", "http://c2.example.net/cross.php?op=1&dt=2&uid=3", "198.51.100.7", CHROME),
    ("GET", "http://c2.example.net/cross.phpXop=1&dt=2&uid=3", "198.51.100.7", CHROME),
    ("GET", "http://c2.example.net/cross.php?op=1&dt=2", "198.51.100.7", CHROME),
    ("GET", "http://cdn.example.net/images/a_2fb.avi", "203.0.113.90", CHROME),
    ("GET", "http://cdn.example.net/images/a_2fb.mp4", "203.0.113.90", CHROME),
    ("GET", "http://x.example.net/asp.asp?ui=host1", "203.0.113.91", CHROME),
    ("GET", "http://x.example.net/asp.aspXui=host1", "203.0.113.91", CHROME),
    ("GET", "https://raw.example.com/IconStorages/images/main/icon12.ico", "203.0.113.92", CHROME),
    ("GET", "http://static.tcplog.com/x", "203.0.113.93", "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/54.0.2840.71 Safari/537.36"),
    ("GET", "http://www.example.com/", "93.184.216.34", "hello-world/1.0"),
    ("GET", "http://www.example.com/", "93.184.216.34", "TW96aWxsYS81LjA="),
    ("GET", "http://www.example.com/", "93.184.216.34", "Mozilla/5.0 (Windows NT 6.1; MANM; MANM)"),
    ("GET", "http://ipfs.io/ipfs/Qm/a.html#me@example.com", "203.0.113.80", CHROME),
]

FIELDS = {
    "c-uri": "url",
    "cs-uri": "url",
    "c-uri-stem": "uri_stem(path)",
    "cs-uri-stem": "uri_stem(path)",
    "c-uri-query": "uri_query(path)",
    "c-uri-extension": "uri_extension(path)",
    "c-useragent": "user_agent",
    "cs-host": "host",
    "cs-method": "method",
    "sc-status": "status",
    "dst_ip": "server_ip",
    "cs-cookie": "CAST(NULL AS VARCHAR)",
}


def trawl(binary, *args):
    return subprocess.run([binary, *args], check=True, capture_output=True, text=True)


def main():
    binary = sys.argv[1]
    rules = sorted(p for p in COMMUNITY.rglob("*.yml") if "category: proxy" in p.read_text()) if COMMUNITY.is_dir() else []
    if not rules:
        rules = sorted((ROOT / "testdata" / "sigma").glob("*.yml"))
        print(f"community rules not found at {COMMUNITY}; cross-checking testdata/sigma only")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        logs = tmp / "logs"
        logs.mkdir()
        with open(logs / "access.log", "w") as f:
            for i, (method, url, server, agent) in enumerate(LINES):
                hier = "HIER_NONE/-" if server == "-" else f"HIER_DIRECT/{server}"
                f.write(f"{1717466400 + i * 60}.000     12 10.0.0.{i + 1} TCP_MISS/200 512 {method} {url} - {hier} text/html \"{agent}\"\n")
        lake = tmp / "lake"
        trawl(binary, "ingest", "--quiet", "--tz", "Asia/Tokyo", "--lake", str(lake), "--squid-logformat", LOGFORMAT, str(logs))
        cols = ", ".join(f'{sql} AS "{name}"' for name, sql in FIELDS.items())
        out = trawl(binary, "query", "--lake", str(lake), "--format", "ndjson", f"SELECT {cols}, source_file, source_line FROM proxy")
        rows = [json.loads(l) for l in out.stdout.splitlines() if l.strip()]
        assert len(rows) == len(LINES), f"{len(rows)} rows for {len(LINES)} lines"

        db = sqlite3.connect(":memory:")
        db.create_function("regexp", 2, lambda pattern, value: value is not None and re.search(pattern, value) is not None)
        decl = ", ".join(f'"{n}" {"INTEGER" if n == "sc-status" else "TEXT COLLATE NOCASE"}' for n in FIELDS)
        db.execute(f"CREATE TABLE logs ({decl}, source_file TEXT, source_line INTEGER)")
        names = list(FIELDS) + ["source_file", "source_line"]
        db.executemany(
            f"INSERT INTO logs VALUES ({', '.join('?' for _ in names)})", [[r.get(n) for n in names] for r in rows]
        )

        report = tmp / "report"
        args = ["detect", "--no-builtin", "--rows", "0", "--lake", str(lake), "--out", str(report)]
        for r in rules:
            args += ["--sigma", str(r)]
        trawl(binary, *args)
        summary = {row["detection"]: row for row in csv.DictReader(open(report / "summary.csv", encoding="utf-8-sig"))}

        backend = sqliteBackend()
        agree = differ = 0
        for rule in rules:
            stem = rule.stem
            try:
                queries = backend.convert(SigmaCollection.from_yaml(rule.read_text()))
            except Exception as e:  # pySigma refuses what it does not support: say so, compare the rest.
                print(f"pysigma cannot convert {stem}: {type(e).__name__}: {str(e).splitlines()[0][:100]}")
                continue
            theirs = set()
            for q in queries:
                q = q.replace("SELECT * FROM", "SELECT source_file, source_line FROM", 1)
                theirs |= {(f, int(l)) for f, l in db.execute(q)}
            status = summary[stem]["status"]
            if status == "skipped":
                print(f"trawl skips {stem}: {summary[stem]['note']} (pysigma: {len(theirs)} hits)")
                continue
            ours = set()
            hits = report / f"{stem}.csv"
            if hits.exists():
                ours = {(r["source_file"], int(r["source_line"])) for r in csv.DictReader(open(hits, encoding="utf-8-sig"))}
            if ours == theirs:
                agree += 1
                print(f"agree   {stem}: {sorted(l for _, l in ours)}")
            else:
                differ += 1
                print(f"DIFFER  {stem}: trawl {sorted(l for _, l in ours)}, pysigma {sorted(l for _, l in theirs)}")
        print(f"{agree} passed, {differ} failed")
        return 0 if differ == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
