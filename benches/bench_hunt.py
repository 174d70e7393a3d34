#!/usr/bin/env python3
"""Times `trawl hunt` with N indicators (default 10,000) against DuckDB doing the same joins over the same
Parquet files, and prints seconds, peak RSS and how many indicators each side saw.

Usage: bench_hunt.py --lake LAKE --trawl BIN [--count N] [--reps R] [--work DIR]
       bench_hunt.py duckdb --lake LAKE --typed FILE      (one DuckDB run; used by the above)

The indicator list is seeded: about 4% are taken from the lake (parent domains of logged hosts, server
addresses and their /24s, logged URLs and URL prefixes) so that there are hits, the rest are random domains,
IPv4 and IPv6 addresses and networks and URLs that are nowhere in it. trawl reads the plain-text list. DuckDB gets
the same indicators already typed and normalised (the list's keys, IPv4 ranges as integers) and joins: each
distinct host's parent domains (unnested) against the domains, addresses by equality, IPv4 addresses against the
networks by a range join over the distinct addresses, URLs (trailing slash trimmed) by equality and prefixes by
`starts_with` after a join on their scheme and host. IPv6 networks have no counterpart in DuckDB without its
inet extension (not bundled), so they are left to trawl; the random ones hit nothing either way. Rows matched
through several columns count once per indicator on both sides (distinct source_file, source_line).
"""
import argparse
import csv
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_detect import live_files


def views(con, lake):
    for table in ("proxy", "firewall"):
        files = live_files(lake / table) if (lake / table / "_delta_log").is_dir() else []
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{listed}], hive_partitioning = true, "
                    "hive_types = {'date': 'VARCHAR'})")


def v4_int(s):
    a, b, c, d = (int(x) for x in s.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def make_indicators(lake, count, seed):
    """[(type, value)]: some from the lake, the rest random."""
    import duckdb
    rng = random.Random(seed)
    con = duckdb.connect()
    views(con, lake)
    hosts = [r[0] for r in con.execute(
        "SELECT DISTINCT host FROM proxy WHERE host LIKE '%.%.%' AND NOT regexp_full_match(host, '[0-9.]+') "
        "ORDER BY host").fetchall()]
    servers = [r[0] for r in con.execute(
        "SELECT DISTINCT server_ip FROM proxy WHERE regexp_full_match(server_ip, '[0-9]+(\\.[0-9]+){3}') "
        "ORDER BY 1").fetchall()]
    urls = [r[0] for r in con.execute(
        "SELECT DISTINCT url FROM proxy WHERE url LIKE 'http%://%/%' AND url NOT LIKE '%?%' "
        "AND url NOT LIKE '%#%' ORDER BY 1 LIMIT 20000").fetchall()]
    out = []
    for h in rng.sample(hosts, min(150, len(hosts))):
        out.append(("domain", h.split(".", 1)[1]))
    for ip in rng.sample(servers, min(100, len(servers))):
        out.append(("ip", ip))
    for ip in rng.sample(servers, min(30, len(servers))):
        out.append(("cidr", ip.rsplit(".", 1)[0] + ".0/24"))
    for u in rng.sample(urls, min(100, len(urls))):
        out.append(("url", u))
    for u in rng.sample(urls, min(20, len(urls))):
        out.append(("url_prefix", u.rsplit("/", 1)[0] + "/*"))
    word = lambda n: "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))
    kinds = [("domain", 0.60), ("ip", 0.22), ("cidr", 0.06), ("ip6", 0.03), ("cidr6", 0.02), ("url", 0.07)]
    while len(out) < count * 1.1:
        kind = rng.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
        if kind == "domain":
            out.append(("domain", f"{word(10)}.{rng.choice(['com', 'net', 'top', 'xyz', 'ru', 'jp'])}"))
        elif kind == "ip":
            out.append(("ip", f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"))
        elif kind == "cidr":
            out.append(("cidr", f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.0/24"))
        elif kind == "ip6":
            out.append(("ip", f"2001:db8:{rng.randint(0, 65535):x}::{rng.randint(1, 65535):x}"))
        elif kind == "cidr6":
            out.append(("cidr6", f"2001:db8:{rng.randint(0, 65535):x}::/48"))
        else:
            out.append(("url", f"http://{word(8)}.com/{word(6)}/{word(5)}.php"))
    # The same value twice would be one indicator to trawl and two to DuckDB.
    seen, unique = set(), []
    for kind, v in out:
        if v not in seen:
            seen.add(v)
            unique.append((kind, v))
        if len(unique) == count:
            break
    return unique


def key(kind, value):
    """The key DuckDB matches by (trawl normalises the same values itself)."""
    if kind == "url":
        return value.rstrip("/")
    if kind == "url_prefix":
        return value[:-1]
    return value


def write_lists(inds, work):
    plain = work / "iocs.txt"
    typed = work / "iocs-typed.csv"
    with open(plain, "w") as f:
        f.write("# generated for bench_hunt.py\n")
        for _, v in inds:
            f.write(v + "\n")
    with open(typed, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "type", "key", "lo", "hi", "head"])
        for i, (kind, v) in enumerate(inds):
            lo = hi = head = ""
            if kind == "cidr":
                net, bits = v.split("/")
                lo = v4_int(net)
                hi = lo + (1 << (32 - int(bits))) - 1
            if kind == "url_prefix":
                k = key(kind, v)
                head = k[:k.index("/", k.index("://") + 3)]
            w.writerow([i, kind, key(kind, v), lo, hi, head])
    return plain, typed


DUCKDB_SQL = """
CREATE TABLE ioc AS SELECT * FROM read_csv('{typed}', header = true, all_varchar = false,
  types = {{'id': 'INTEGER', 'type': 'VARCHAR', 'key': 'VARCHAR', 'lo': 'BIGINT', 'hi': 'BIGINT', 'head': 'VARCHAR'}});
CREATE TEMP TABLE p AS SELECT source_file, source_line, ts, coalesce(username, client_ip) AS who,
  request_bytes AS bytes_out, response_bytes AS bytes_in,
  coalesce(action = 'block' OR cache_result LIKE 'TCP_DENIED%', false) AS blocked,
  host, url, client_ip, server_ip
FROM proxy;
WITH
dom AS (
  SELECT host, unnest(list_transform(range(1, len(string_split(host, '.')) + 1),
                      lambda i: array_to_string(string_split(host, '.')[i:], '.'))) AS sfx
  FROM (SELECT DISTINCT host FROM p WHERE host IS NOT NULL)),
dom_hit AS (SELECT d.host, i.id FROM dom d JOIN ioc i ON i.type = 'domain' AND i.key = d.sfx),
addr AS (SELECT DISTINCT v FROM (SELECT host AS v FROM p UNION ALL SELECT client_ip FROM p UNION ALL SELECT server_ip FROM p
                                  UNION ALL SELECT src_ip FROM firewall UNION ALL SELECT dst_ip FROM firewall)
         WHERE regexp_full_match(v, '[0-9]+(\\.[0-9]+){{3}}')),
addr_int AS (SELECT v, split_part(v, '.', 1)::BIGINT * 16777216 + split_part(v, '.', 2)::BIGINT * 65536
                     + split_part(v, '.', 3)::BIGINT * 256 + split_part(v, '.', 4)::BIGINT AS n FROM addr),
net_hit AS (SELECT a.v, i.id FROM addr_int a JOIN ioc i ON i.type = 'cidr' AND a.n BETWEEN i.lo AND i.hi),
ip_hit AS (SELECT i.key AS v, i.id FROM ioc i WHERE i.type = 'ip' UNION ALL SELECT v, id FROM net_hit),
m AS (
  SELECT p.*, h.id FROM p JOIN dom_hit h USING (host)
  UNION SELECT p.*, h.id FROM p JOIN ip_hit h ON p.host = h.v
  UNION SELECT p.*, h.id FROM p JOIN ip_hit h ON p.client_ip = h.v
  UNION SELECT p.*, h.id FROM p JOIN ip_hit h ON p.server_ip = h.v
  UNION SELECT p.*, i.id FROM p JOIN ioc i ON i.type = 'url' AND rtrim(p.url, '/') = i.key
  UNION SELECT p.*, i.id FROM p JOIN ioc i ON i.type = 'url_prefix'
        AND i.head = lower(regexp_extract(p.url, '^[a-z]+://[^/?#]+')) AND starts_with(p.url, i.key)
),
fw AS (SELECT source_file, source_line, ts, CASE WHEN path = 'RECEIVE' THEN dst_ip ELSE src_ip END AS who,
              size, action = 'DROP' AS blocked, src_ip, dst_ip FROM firewall),
fm AS (
  SELECT fw.*, h.id FROM fw JOIN ip_hit h ON fw.src_ip = h.v
  UNION SELECT fw.*, h.id FROM fw JOIN ip_hit h ON fw.dst_ip = h.v
),
per AS (
  SELECT id, count(*) AS requests, min(ts) AS first_seen, max(ts) AS last_seen, sum(bytes_out) AS bytes_out,
         sum(bytes_in) AS bytes_in, count(*) FILTER (WHERE blocked) AS blocked, count(DISTINCT who) AS who
  FROM m GROUP BY id
  UNION ALL
  SELECT id, count(*), min(ts), max(ts), sum(size), NULL, count(*) FILTER (WHERE blocked), count(DISTINCT who)
  FROM fm GROUP BY id
)
SELECT id, sum(requests) AS requests FROM per GROUP BY id ORDER BY id
"""


def run_duckdb(a):
    import duckdb
    con = duckdb.connect()
    views(con, Path(a.lake))
    statements = [s for s in DUCKDB_SQL.format(typed=a.typed).split(";\n") if s.strip()]
    for s in statements[:-1]:
        con.execute(s)
    rows = con.execute(statements[-1]).fetchall()
    print(json.dumps({"indicators_seen": len(rows), "requests": sum(r[1] for r in rows)}))


def run(cmd):
    """Wall seconds, peak RSS bytes (wait4's rusage) and stdout of one child process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        # trawl hunt exits 1 when list values are not indicators; the generated list has none.
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{' '.join(map(str, cmd))} failed:\n{err.read().decode(errors='replace')}")
        return elapsed, usage.ru_maxrss * 1024, out.read().decode()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "duckdb":
        p = argparse.ArgumentParser()
        p.add_argument("cmd")
        p.add_argument("--lake", required=True)
        p.add_argument("--typed", required=True)
        return run_duckdb(p.parse_args())
    p = argparse.ArgumentParser()
    p.add_argument("--lake", required=True)
    p.add_argument("--trawl", required=True)
    p.add_argument("--count", type=int, default=10_000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--work")
    a = p.parse_args()
    lake = Path(a.lake)
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="bench-hunt-"))
    work.mkdir(parents=True, exist_ok=True)
    inds = make_indicators(lake, a.count, a.seed)
    plain, typed = write_lists(inds, work)
    print(f"{len(inds)} indicators ({', '.join(f'{k}: {sum(1 for t, _ in inds if t == k)}' for k in sorted({t for t, _ in inds}))}) "
          f"against {lake}", file=sys.stderr)
    trawl = [a.trawl, "hunt", "--lake", str(lake), "--ioc", str(plain), "--out", str(work / "out"), "--force"]
    duck = [sys.executable, __file__, "duckdb", "--lake", str(lake), "--typed", str(typed)]
    times = {"trawl": [], "duckdb": []}
    peaks = {"trawl": 0, "duckdb": 0}
    outs = {}
    for _ in range(a.reps):
        # Turns, so that load from elsewhere on a shared machine falls on both alike.
        for name, cmd in (("trawl", trawl), ("duckdb", duck)):
            t, rss, outs[name] = run(cmd)
            times[name].append(t)
            peaks[name] = max(peaks[name], rss)
    with open(work / "out" / "hits.csv", newline="") as f:
        hits = list(csv.DictReader(f))
    seen_trawl = len(hits)
    requests_trawl = sum(int(h["requests"]) for h in hits)
    duck_result = json.loads(outs["duckdb"].strip().splitlines()[-1])
    for name in ("trawl", "duckdb"):
        med = statistics.median(times[name])
        print(f"{name:7} {med:6.2f} s median (runs: {', '.join(f'{t:.2f}' for t in times[name])}), "
              f"peak RSS {peaks[name] / 2**20:.0f} MiB", file=sys.stderr)
    print(f"indicators seen: trawl {seen_trawl}, duckdb {duck_result['indicators_seen']}; "
          f"matched rows: trawl {requests_trawl}, duckdb {duck_result['requests']}", file=sys.stderr)


if __name__ == "__main__":
    main()
