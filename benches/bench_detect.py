#!/usr/bin/env python3
"""Times `trawl detect` against DuckDB running the same SQL over the same Parquet files, and prints a
table, ratios first.

Usage: bench_detect.py --lake LAKE --trawl BIN [--pack queries] [--reps N] [--only ID,...]
       bench_detect.py duckdb --lake LAKE --pack queries --ids ID,...    (one DuckDB run; used by the above)

The DuckDB side reads each detection's .sql file itself: parameters get their defaults, `local_ts(x)` becomes
DuckDB's `timezone('<lake zone>', x)`, the lake's tables are views over the Parquet files its Delta log names,
and the pack's CSV lists (jp_holidays) are tables. Detections calling trawl's own functions (reg_domain,
url_host) have no DuckDB counterpart and are timed for trawl only. Wall time is the median of N runs of a whole
process (start-up included on both sides), trawl's and DuckDB's runs taking turns so that load from elsewhere
falls on both; peak RSS is the largest of them (from wait4's rusage). Row counts of both sides are compared, so
a fast but wrong translation shows.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# trawl's SQL functions; a detection calling one cannot run in DuckDB.
TRAWL_ONLY = re.compile(r"\b(reg_domain|url_host|ua_\w+|ip_country|ip_asn|ip_org|fingerprint)\s*\(", re.I)
NOTES_MARKER = "\n-- @notes\n"


def closing_quote(s):
    """Index just past the quote closing the '...' literal that starts s ('' is an escaped quote)."""
    i = 1
    while i < len(s):
        if s[i] == "'":
            if s[i + 1:i + 2] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    return len(s)


def param_literal(rest):
    """The SQL literal trawl substitutes for a front-matter default (`name = default  # note`)."""
    rest = rest.strip()
    if rest.startswith("'"):
        return rest[:closing_quote(rest)]
    value = rest.split("#", 1)[0].strip()
    # An integer list (`80, 443`) is substituted as trawl writes it: items joined by ", ".
    return ", ".join(p.strip() for p in value.split(",")) if "," in value else value


def load_detection(path):
    """(id, tables, main SQL, notes SQL or None, parameters), parameters substituted with their defaults."""
    params, tables, ident = {}, [], path.stem
    lines = path.read_text().splitlines(keepends=True)
    body_at = len(lines)
    for n, line in enumerate(lines):
        t = line.strip()
        if not t:
            continue
        if not t.startswith("--"):
            body_at = n
            break
        m = re.match(r"--\s*(\w+):\s*(.*)$", t)
        if not m or line.lstrip().startswith("--  "):
            continue
        key, value = m.groups()
        if key == "param":
            name, rest = value.split("=", 1)
            params[name.strip()] = param_literal(rest)
        elif key == "tables":
            tables = [x.strip() for x in value.split(",") if x.strip()]
        elif key == "id":
            ident = value.strip()
    body = "".join(lines[body_at:])
    body = re.sub(r"\$\{(\w+)\}", lambda m: params[m.group(1)], body)
    sql, _, notes = body.partition(NOTES_MARKER)
    clean = lambda s: s.strip().rstrip(";").strip() or None
    return ident, tables, clean(sql), clean(notes), params


def load_pack(pack):
    return {d[0]: d for d in map(load_detection, sorted(Path(pack).glob("*.sql")))}


def portable(d):
    return not any(TRAWL_ONLY.search(s) for s in d[2:4] if s)


# A regular-expression match in DataFusion (`x ~ 'p'`) finds p anywhere in x; DuckDB's `~` must match
# all of x, so the translation calls regexp_matches, which finds it anywhere too.
REGEX_MATCH = re.compile(r"((?:\w+\.)?\w+)\s*~\s*('(?:[^']|'')*')")

# DuckDB dialect of the views every trawl session has (src/engine/views.rs; constants as there). Without
# --since/--until the history views are the tables. The row counts compared below show any drift.
DUPLICATE_WITHIN_SECONDS, BUCKET_SECONDS, MACHINE_HOURS_PER_DAY = 2.0, 10, 18.0
VIEWS = {
    "proxy_history": "SELECT * FROM proxy",
    "firewall_history": "SELECT * FROM firewall",
    "proxy_unique": f"""
        WITH k AS (
          SELECT client_ip, method, url, ts, coalesce(log_host, '') || '|' || source_file AS src, source_format,
                 duration_ms, request_bytes, response_bytes,
                 CAST(floor(date_part('epoch', ts) / {BUCKET_SECONDS}) AS BIGINT) AS b
          FROM proxy
        ),
        earlier AS (SELECT *, b AS kb FROM k UNION ALL SELECT *, b + 1 AS kb FROM k)
        SELECT p.* EXCLUDE (src_, b_)
        FROM (SELECT *, coalesce(log_host, '') || '|' || source_file AS src_,
                     CAST(floor(date_part('epoch', ts) / {BUCKET_SECONDS}) AS BIGINT) AS b_ FROM proxy) p
        ANTI JOIN earlier o
          ON o.client_ip = p.client_ip AND o.method = p.method AND o.url = p.url AND o.kb = p.b_
          AND o.src <> p.src_
          AND (o.ts < p.ts OR (o.ts = p.ts AND o.src < p.src_))
          AND date_part('epoch', p.ts) - date_part('epoch', o.ts)
                <= {DUPLICATE_WITHIN_SECONDS} + greatest(coalesce(p.duration_ms, 0), coalesce(o.duration_ms, 0)) / 1000.0
          AND (o.source_format <> p.source_format
               OR ((o.request_bytes IS NOT DISTINCT FROM p.request_bytes)
                   AND (o.response_bytes IS NOT DISTINCT FROM p.response_bytes)))""",
    "proxy_hours": """
        SELECT coalesce(username, client_ip) AS who, date, date_part('hour', local_ts(ts)) AS hour,
               count(*) AS requests, min(ts) AS first_ts, max(ts) AS last_ts
        FROM proxy GROUP BY 1, 2, 3""",
    "proxy_hours_history": "SELECT * FROM proxy_hours",
    "proxy_actors": f"""
        SELECT who, count(DISTINCT date) AS days, count(*) AS active_hours,
               CAST(count(*) AS DOUBLE) / count(DISTINCT date) AS hours_per_day,
               CAST(count(*) AS DOUBLE) / count(DISTINCT date) >= {MACHINE_HOURS_PER_DAY} AS machine
        FROM proxy_hours_history h
        GROUP BY who""",
}


def to_duckdb(sql, tz):
    # local_ts(x) is the wall time of x in the lake's zone; DuckDB's timezone(zone, timestamptz) is the same.
    sql = re.sub(r"\blocal_ts\s*\(", f"timezone('{tz}', ", sql)
    # to_char(ts, '%H:%M') formats with strftime's codes in both; DuckDB calls it strftime.
    sql = re.sub(r"\bto_char\s*\(", "strftime(", sql)
    # A date as a day number: DataFusion casts a DATE to INT (days since 1970); DuckDB subtracts.
    sql = re.sub(r"CAST\(CAST\(((?:\w+\.)?\w+) AS DATE\) AS INT\)", r"(CAST(\1 AS DATE) - DATE '1970-01-01')", sql)
    return REGEX_MATCH.sub(r"regexp_matches(\1, \2)", sql)


def live_files(table_dir):
    """Parquet files in the table's current version, replaying its Delta log (adds minus removes)."""
    files = {}
    for log in sorted((table_dir / "_delta_log").glob("*.json")):
        for line in log.read_text().splitlines():
            action = json.loads(line) if line.strip() else {}
            if "add" in action:
                files[action["add"]["path"]] = True
            elif "remove" in action:
                files.pop(action["remove"]["path"], None)
    from urllib.parse import unquote
    return sorted(str(table_dir / unquote(p)) for p in files)


def run_duckdb(a):
    """One process: views over the lake, then each detection (main query and notes), all rows fetched."""
    import duckdb
    lake = Path(a.lake)
    tz = json.loads((lake / "trawl.json").read_text())["time_zone"]
    con = duckdb.connect()
    for table in ("proxy", "firewall"):
        files = live_files(lake / table) if (lake / table / "_delta_log").is_dir() else []
        if files:
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            # `date` is the partition's local day as text, as trawl declares it (not DuckDB's guess, DATE).
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{listed}], hive_partitioning = true, "
                        "hive_types = {'date': 'VARCHAR'})")
    if (lake / "proxy" / "_delta_log").is_dir():
        for name in ("proxy_history", "proxy_unique", "proxy_hours", "proxy_hours_history", "proxy_actors"):
            con.execute(f"CREATE VIEW {name} AS {to_duckdb(VIEWS[name], tz)}")
    if (lake / "firewall" / "_delta_log").is_dir():
        con.execute(f"CREATE VIEW firewall_history AS {VIEWS['firewall_history']}")
    # No --allow list in the benchmark: trawl's allow_domains table is empty too.
    con.execute("CREATE TABLE allow_domains (domain VARCHAR)")
    for csv in sorted((Path(a.pack) / "lists").glob("*.csv")):
        name = csv.stem.replace("-", "_")
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{csv}', all_varchar = true)")
    pack = load_pack(a.pack)
    rows = {}
    for ident in a.ids.split(","):
        _, _, sql, notes, params = pack[ident]
        result = con.execute(to_duckdb(sql, tz))
        got = result.fetchall()
        # Hits as trawl counts them: the rows whose score reaches the detection's min_score.
        cols = [c[0] for c in result.description]
        if "score" in cols and "min_score" in params:
            k, floor = cols.index("score"), float(params["min_score"])
            got = [r for r in got if r[k] is not None and r[k] >= floor]
        rows[ident] = len(got)
        if notes:
            con.execute(to_duckdb(notes, tz)).fetchall()
    print(json.dumps(rows))


def run(cmd):
    """Wall seconds, peak RSS bytes and stdout of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{err.decode(errors='replace')}")
    return elapsed, usage.ru_maxrss * 1024, out.decode()


def timed(label, cmd, reps, other=None):
    """Median seconds, peak RSS and last stdout of `cmd` (and of `other`, run in turn with it so that
    load from elsewhere on a shared machine falls on both alike)."""
    cmds = [(label, cmd)] + ([other] if other else [])
    times, peak, out = [[] for _ in cmds], [0] * len(cmds), [""] * len(cmds)
    for _ in range(reps):
        for k, (_, c) in enumerate(cmds):
            t, rss, out[k] = run(c())
            times[k].append(t)
            peak[k] = max(peak[k], rss)
    result = []
    for k, (name, _) in enumerate(cmds):
        med = statistics.median(times[k])
        print(f"  {name}: {med:.2f} s (runs: {', '.join(f'{t:.2f}' for t in times[k])}), {peak[k] / 2**20:.0f} MiB",
              file=sys.stderr)
        result += [med, peak[k], out[k]]
    return result


def trawl_hits(out_dir):
    """Hits per detection from `trawl detect --out`'s summary.csv."""
    import csv
    with open(out_dir / "summary.csv", newline="", encoding="utf-8-sig") as f:
        return {r["detection"]: int(r["hits"] or 0) for r in csv.DictReader(f)}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "duckdb":
        ap = argparse.ArgumentParser()
        ap.add_argument("mode")
        ap.add_argument("--lake", required=True)
        ap.add_argument("--pack", required=True)
        ap.add_argument("--ids", required=True)
        return run_duckdb(ap.parse_args())
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", required=True, type=Path)
    ap.add_argument("--trawl", required=True)
    ap.add_argument("--pack", default=str(Path(__file__).resolve().parent.parent / "queries"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="", help="detections to time alone (default: all)")
    a = ap.parse_args()
    pack = load_pack(a.pack)
    ids = [i.strip() for i in a.only.split(",") if i.strip()] or list(pack)
    both = [i for i in pack if portable(pack[i])]
    me = [sys.executable, str(Path(__file__).resolve())]
    duck = lambda which: me + ["duckdb", "--lake", str(a.lake), "--pack", a.pack, "--ids", ",".join(which)]
    trawl = lambda *extra: [a.trawl, "detect", "--lake", str(a.lake), "--rows", "0", *extra]
    work = Path(tempfile.mkdtemp(prefix="trawl-bench-detect-"))

    # The whole pack writes its hits (--out) so they can be checked against DuckDB's row counts.
    pack_t, pack_rss, _ = timed("trawl, whole pack", lambda: trawl("--out", str(work), "--force"), a.reps)
    hits = trawl_hits(work)
    only_both = [x for i in both for x in ("--only", i)]
    sub_t, sub_rss, _, dsub_t, dsub_rss, out = timed("trawl, DuckDB's detections", lambda: trawl(*only_both),
                                                     a.reps, ("duckdb, same detections", lambda: duck(both)))
    duck_rows = json.loads(out)
    alone = {}
    for i in ids:
        other = (f"duckdb {i}", lambda: duck([i])) if i in both else None
        r = timed(f"trawl --only {i}", lambda: trawl("--only", i), a.reps, other)
        alone[i] = r[0:2] + r[3:5]

    mib = lambda b: f"{b / 2**20:.0f} MiB"
    ratio = lambda x, y: f"{x / y:.2f}x"
    print(f"\nlake {a.lake.name}: proxy {len(live_files(a.lake / 'proxy'))} files, "
          f"{sum(os.path.getsize(f) for f in live_files(a.lake / 'proxy')) / 1e6:.0f} MB of Parquet; "
          f"{os.cpu_count()} cores; median of {a.reps} runs of a whole process each\n")
    print("| detection | trawl / duckdb | trawl s | duckdb s | trawl peak RSS | duckdb peak RSS | rows trawl / duckdb |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for i in ids:
        r = alone[i]
        if len(r) == 4:
            rows = f"{hits.get(i, '-')} / {duck_rows.get(i, '-')}"
            flag = "" if hits.get(i) == duck_rows.get(i) else " **differ**"
            print(f"| {i} | {ratio(r[0], r[2])} | {r[0]:.2f} | {r[2]:.2f} | {mib(r[1])} | {mib(r[3])} | {rows}{flag} |")
        else:
            print(f"| {i} | (trawl only) | {r[0]:.2f} | - | {mib(r[1])} | - | {hits.get(i, '-')} / - |")
    print(f"| **{len(both)} detections DuckDB can run, one process** | **{ratio(sub_t, dsub_t)}** | {sub_t:.2f} | "
          f"{dsub_t:.2f} | {mib(sub_rss)} | {mib(dsub_rss)} | |")
    print(f"| **whole pack ({len(pack)}), one process** | - | {pack_t:.2f} | - | {mib(pack_rss)} | - | |")
    for p in work.iterdir():
        p.unlink()
    work.rmdir()


if __name__ == "__main__":
    main()
