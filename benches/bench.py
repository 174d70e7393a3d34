#!/usr/bin/env python3
"""Runs each contender on the same files in one run and prints a table, ratios first.

Usage: bench.py --data DIR --trawl BIN [--reps N] [--only NAME,...]
Wall time is the median of N runs; peak RSS is the largest of them (from wait4's rusage)."""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(cmd, stdout=subprocess.DEVNULL):
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, shell=isinstance(cmd, str))
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        sys.exit(f"{cmd} failed:\n{err}")
    return elapsed, usage.ru_maxrss * 1024, err


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--gz-data", type=Path, help="the same logs gzipped, for zcat and trawl on .gz")
    ap.add_argument("--ifilter-data", type=Path, help="i-FILTER logs of about the same size")
    ap.add_argument("--firewall-data", type=Path, help="pfirewall logs of about the same size")
    ap.add_argument("--trawl", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    files = sorted(str(p) for p in a.data.iterdir() if p.is_file())
    size = sum(os.path.getsize(f) for f in files)
    lines = int(subprocess.run(f"cat {' '.join(files)} | wc -l", shell=True, capture_output=True,
                               text=True).stdout)
    work = Path(tempfile.mkdtemp(prefix="trawl-bench-"))
    lake = work / "lake"
    contenders = {
        "cat": lambda: f"cat {' '.join(files)} > /dev/null",
        "trawl ingest": lambda: [a.trawl, "ingest", "--quiet", "--tz", "UTC", "--lake", str(lake), str(a.data)],
        "duckdb (regex to parquet)": lambda: [sys.executable, str(HERE / "load_duckdb.py"),
                                              str(work / "duck.parquet"), *files],
        "polars (regex to parquet)": lambda: [sys.executable, str(HERE / "load_polars.py"),
                                              str(work / "polars.parquet"), *files],
    }
    if a.gz_data:
        gz = sorted(str(p) for p in a.gz_data.iterdir() if p.is_file())
        contenders["zcat (.gz)"] = lambda: f"cat {' '.join(gz)} | gzip -dc > /dev/null"
        contenders["trawl ingest (.gz)"] = lambda: [a.trawl, "ingest", "--quiet", "--tz", "UTC", "--lake",
                                                    str(lake), str(a.gz_data)]
    native = "native %ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt"
    contenders["trawl ingest (compiled logformat)"] = lambda: [a.trawl, "ingest", "--quiet", "--tz", "UTC", "--lake",
                                                              str(lake), "--squid-logformat", native, str(a.data)]
    sizes = {}
    for label, d in [("ifilter", a.ifilter_data), ("firewall", a.firewall_data)]:
        if d:
            sizes[f"trawl ingest ({label})"] = sum(p.stat().st_size for p in d.iterdir() if p.is_file())
            contenders[f"trawl ingest ({label})"] = (lambda d=d: [a.trawl, "ingest", "--quiet", "--tz", "UTC",
                                                                  "--lake", str(lake), str(d)])
    if a.gz_data:
        sizes["trawl ingest (.gz)"] = sum(p.stat().st_size for p in a.gz_data.iterdir() if p.is_file())
        sizes["zcat (.gz)"] = sizes["trawl ingest (.gz)"]
    only = [o.strip() for o in a.only.split(",") if o.strip()]
    results = {}
    for name, cmd in contenders.items():
        if only and not any(o in name for o in only):
            continue
        times, peak = [], 0
        for _ in range(a.reps):
            shutil.rmtree(lake, ignore_errors=True)
            elapsed, rss, err = run(cmd())
            times.append(elapsed)
            peak = max(peak, rss)
        results[name] = (statistics.median(times), peak)
        print(f"  {name}: {statistics.median(times):.2f} s (runs: {', '.join(f'{t:.2f}' for t in times)})",
              file=sys.stderr)
    base = results.get("trawl ingest", (None,))[0]
    print(f"\n{len(files)} files, {size / 1e6:.0f} MB, {lines} lines; {os.cpu_count()} cores; median of {a.reps}\n")
    print("MB/s counts bytes on disk (compressed for .gz); 'per byte vs trawl' compares seconds per MB with plain "
          "Squid native ingest, so 2.00x means half as fast.\n")
    print(f"| {'contender':<34} | {'per byte vs trawl':>17} | {'MB/s':>8} | {'lines/s':>11} | {'seconds':>8} | "
          f"{'peak RSS':>9} |")
    print(f"|{'-' * 36}|{'-' * 18}:|{'-' * 9}:|{'-' * 12}:|{'-' * 9}:|{'-' * 10}:|")
    base_rate = base / size if base else None
    for name, (t, rss) in results.items():
        nbytes = sizes.get(name, size)
        ratio = f"{(t / nbytes) / base_rate:.2f}x" if base_rate else "-"
        # Lines are those of the Squid files; the i-FILTER and firewall sets have their own counts.
        per_line = f"{lines / t:,.0f}" if name not in ("trawl ingest (ifilter)", "trawl ingest (firewall)") else "-"
        print(f"| {name:<34} | {ratio:>17} | {nbytes / 1e6 / t:>8.1f} | {per_line:>11} | {t:>8.2f} | "
              f"{rss / 2**20:>7.0f} MiB |")
    print(f"\nSquid native: {lines:,} lines; trawl ingest {lines / base:,.0f} lines/s" if base else "")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
