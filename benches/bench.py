#!/usr/bin/env python3
"""Runs each contender on the same files in one run and prints a table, ratios first, with the rows each
kept (a contender that drops lines it cannot read says how many); then, with --parsers, one core's
parse-only and Parquet-encode-only figures per format and zstd's alone, to show where the limit is.

Usage: bench.py --data DIR --trawl BIN [--parsers BIN] [--reps N] [--only NAME,...]
Wall time is the median of N runs; peak RSS is the largest of them (from wait4's rusage)."""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(cmd):
    """Runs cmd to its end; returns wall seconds, peak RSS and what it printed, stdout then stderr (into
    files, so a full pipe never slows it)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, shell=isinstance(cmd, str))
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        printed, errors = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode not in (0, 1):
        sys.exit(f"{cmd} failed:\n{errors}")
    return elapsed, usage.ru_maxrss * 1024, printed + errors


def rows_of(name, printed):
    """Rows a contender kept and lines it accounted for otherwise (trawl's rejects, blank and header
    lines), from what it printed; None for those that only read."""
    if name.startswith("trawl"):
        m = re.search(r": (\d+) lines, (\d+) rows, (\d+) rejects, (\d+) blank, (\d+) header", printed)
        if not m:
            sys.exit(f"{name}: no summary in its output:\n{printed}")
        lines, rows, rejects, blank, header = map(int, m.groups())
        return rows, rejects + blank + header, lines
    if name.startswith(("duckdb", "polars")):
        return int(printed.split("\n", 1)[0]), 0, None
    return None


def versions(trawl):
    """Each tool's version, for the table's heading."""
    def first_line(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, shell=True).stdout.splitlines()[0]
        except (IndexError, OSError):
            return "?"
    py = sys.executable
    return {
        "trawl": first_line(f"{trawl} --version"),
        "duckdb": first_line(f"{py} -c 'import duckdb; print(duckdb.__version__)'"),
        "polars": first_line(f"{py} -c 'import polars; print(polars.__version__)'"),
        "gzip": first_line("gzip --version"),
        "zstd": first_line("zstd --version"),
        "python": sys.version.split()[0],
    }


def limits(parsers, sets):
    """One core's parse-only and encode-only rates per format (the parsers example), and zstd level 1
    alone on the raw log, as markdown rows."""
    rows = []
    for fmt, d in sets:
        if not d:
            continue
        first = sorted(p for p in d.iterdir() if p.is_file())[0]
        out = subprocess.run([parsers, str(first), fmt, "3"], capture_output=True, text=True, check=True).stdout
        parse = re.search(r"([\d.]+) MB: best of \d+ [\d.]+ s = (\d+) lines/s, ([\d.]+) MB/s", out)
        encode = re.search(r"= ([\d.]+) MB/s of log on one core, ([\d.]+) MB of Parquet", out)
        rows.append(f"| {fmt} | {float(parse[1]):.0f} | {int(parse[2]):,} | {float(parse[3]):.1f} | "
                    f"{float(encode[1]):.1f} | {float(encode[2]):.1f} |")
        if fmt == "squid":
            start = time.perf_counter()
            subprocess.run(f"zstd -q -1 -T1 -c {first} > /dev/null", shell=True, check=True)
            zstd_rate = first.stat().st_size / 1e6 / (time.perf_counter() - start)
    return rows, zstd_rate


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--gz-data", type=Path, help="the same logs gzipped, for zcat and trawl on .gz")
    ap.add_argument("--ifilter-data", type=Path, help="i-FILTER logs of about the same size")
    ap.add_argument("--firewall-data", type=Path, help="pfirewall logs of about the same size")
    ap.add_argument("--trawl", required=True)
    ap.add_argument("--parsers", help="the parsers example, for the parse-only and encode-only figures")
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
        "duckdb (split, parquet by day)": lambda: [sys.executable, str(HERE / "load_duckdb.py"),
                                                   str(work / "duck"), *files],
        "polars (split, parquet by day)": lambda: [sys.executable, str(HERE / "load_polars.py"),
                                                   str(work / "polars"), *files],
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
            for d in (lake, work / "duck", work / "polars"):
                shutil.rmtree(d, ignore_errors=True)
            elapsed, rss, printed = run(cmd())
            times.append(elapsed)
            peak = max(peak, rss)
        results[name] = (statistics.median(times), peak, rows_of(name, printed))
        print(f"  {name}: {statistics.median(times):.2f} s (runs: {', '.join(f'{t:.2f}' for t in times)})",
              file=sys.stderr)
    base = results.get("trawl ingest", (None,))[0]
    print(f"\n{len(files)} files, {size / 1e6:.0f} MB, {lines} lines; {os.cpu_count()} cores; median of {a.reps}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions(a.trawl).items()) + "\n")
    print("MB/s counts bytes on disk (compressed for .gz); 'per byte vs trawl' compares seconds per MB with plain "
          "Squid native ingest, so 2.00x means half as fast. 'rows' is what each kept; 'lines lost' the lines "
          "of its input that are neither a row nor, for trawl, a reject, blank or header line it counted.\n")
    print(f"| {'contender':<34} | {'per byte vs trawl':>17} | {'MB/s':>8} | {'lines/s':>11} | {'seconds':>8} | "
          f"{'peak RSS':>9} | {'rows':>10} | {'lines lost':>10} |")
    print(f"|{'-' * 36}|{'-' * 18}:|{'-' * 9}:|{'-' * 12}:|{'-' * 9}:|{'-' * 10}:|{'-' * 11}:|{'-' * 11}:|")
    base_rate = base / size if base else None
    for name, (t, rss, counted) in results.items():
        nbytes = sizes.get(name, size)
        ratio = f"{(t / nbytes) / base_rate:.2f}x" if base_rate else "-"
        # Lines are those of the Squid files; the i-FILTER and firewall sets have their own counts.
        other = name in ("trawl ingest (ifilter)", "trawl ingest (firewall)")
        per_line = f"{lines / t:,.0f}" if not other else "-"
        kept, lost = "-", "-"
        if counted:
            rows, accounted, read = counted
            kept = f"{rows:,}"
            # trawl says how many lines it read (the other sets' own counts); the others, the Squid set's.
            lost = f"{(read if read is not None else lines) - rows - accounted:,}"
        print(f"| {name:<34} | {ratio:>17} | {nbytes / 1e6 / t:>8.1f} | {per_line:>11} | {t:>8.2f} | "
              f"{rss / 2**20:>7.0f} MiB | {kept:>10} | {lost:>10} |")
    print(f"\nSquid native: {lines:,} lines; trawl ingest {lines / base:,.0f} lines/s" if base else "")
    if a.parsers:
        rows, zstd_rate = limits(a.parsers, [("squid", a.data), ("ifilter", a.ifilter_data),
                                             ("windows_firewall", a.firewall_data)])
        print("\nWhere the limit is, one core each (first file of each set, up to 256 MiB, in memory; best of 3):\n")
        print("| format | MB | parse-only lines/s | parse-only MB/s | Parquet encode alone, MB/s of log | "
              "Parquet MB |")
        print("|---|---:|---:|---:|---:|---:|")
        print("\n".join(rows))
        print(f"\nzstd -1 alone on the raw Squid log, one core: {zstd_rate:.1f} MB/s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
