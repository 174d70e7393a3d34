#!/usr/bin/env python3
"""The lake is standard: DuckDB and the Python `deltalake` package read what trawl wrote.

Usage: interop.py TRAWL_BINARY
Ingests testdata/ into a fresh lake, then checks that trawl, delta-rs's Python reader and
DuckDB's Parquet reader (with Hive partitions) all count the same rows, and that DuckDB
sees the same per-day split and the same values for a chosen line.
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
from deltalake import DeltaTable

ROOT = Path(__file__).resolve().parent.parent


def trawl(binary, *args):
    out = subprocess.run([binary, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"trawl {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout


def main():
    binary = sys.argv[1]
    failures = 0
    con = duckdb.connect()
    with tempfile.TemporaryDirectory() as tmp:
        lake = Path(tmp) / "lake"
        trawl(binary, "ingest", "--quiet", "--tz", "Asia/Tokyo", "--lake", str(lake), str(ROOT / "testdata"))
        for table in ["proxy", "firewall", "rejects", "ingests"]:
            n_trawl = json.loads(trawl(binary, "query", "--lake", str(lake), "--format", "json",
                                       f"SELECT count(*) AS n FROM {table}"))[0]["n"]
            dt = DeltaTable(str(lake / table))
            n_delta = dt.to_pyarrow_table().num_rows
            glob = f"{lake}/{table}/*.parquet" if table in ("rejects", "ingests") else f"{lake}/{table}/*/*.parquet"
            n_duck = con.execute(
                f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning=true)").fetchone()[0]
            ok = n_trawl == n_delta == n_duck and n_trawl > 0
            failures += not ok
            print(f"{'ok' if ok else 'FAIL'}: {table}: trawl {n_trawl}, deltalake {n_delta}, duckdb {n_duck}")
        days_trawl = trawl(binary, "query", "--lake", str(lake), "--format", "csv",
                           "SELECT date, count(*) AS n FROM proxy GROUP BY date ORDER BY date").split("\n")[1:-1]
        days_duck = [f"{d},{n}" for d, n in con.execute(
            f"SELECT CAST(date AS VARCHAR), count(*) FROM read_parquet('{lake}/proxy/*/*.parquet', "
            "hive_partitioning=true) GROUP BY 1 ORDER BY 1").fetchall()]
        ok = days_trawl == days_duck
        failures += not ok
        print(f"{'ok' if ok else 'FAIL'}: per-day counts agree ({len(days_duck)} days)")
        row = con.execute(
            f"SELECT epoch_ms(ts), client_ip, username, host, port, status FROM read_parquet("
            f"'{lake}/proxy/*/*.parquet', hive_partitioning=true) "
            "WHERE source_file LIKE '%proxy01/access.log' AND source_line = 5").fetchone()
        expected = (1677971737789, "2001:db8::1", "admin", "example.com", 80, 404)
        ok = row == expected
        failures += not ok
        print(f"{'ok' if ok else 'FAIL'}: duckdb reads a chosen row as trawl wrote it: {row}")
    print(f"interop: {4 + 3 - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
