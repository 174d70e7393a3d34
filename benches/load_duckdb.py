#!/usr/bin/env python3
"""What an analyst does without trawl: DuckDB reads each line as one column, splits it with a regular
expression, and writes zstd Parquet. Usage: load_duckdb.py OUT.parquet FILE..."""
import sys

import duckdb

PATTERN = (r"^(\d+)\.(\d+)\s+(\d+)\s+(\S+)\s+([^/\s]+)/(\d+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+"
           r"([^/\s]+)/(\S+)\s+(\S+)")
NAMES = ["secs", "millis", "duration_ms", "client_ip", "cache_result", "status", "response_bytes", "method",
         "url", "username", "hierarchy", "server_ip", "content_type"]

out, files = sys.argv[1], sys.argv[2:]
con = duckdb.connect()
con.execute("SET threads = 2")
listing = ", ".join(f"'{f}'" for f in files)
typed = {"duration_ms": "BIGINT", "status": "INTEGER", "response_bytes": "BIGINT"}
fields = ", ".join(f"CAST(m.{n} AS {typed[n]}) AS {n}" if n in typed else f"m.{n}" for n in NAMES[2:])
con.execute(f"""
COPY (
  SELECT make_timestamp(CAST(m.secs AS BIGINT) * 1000000 + CAST(m.millis AS BIGINT) * 1000) AS ts, {fields}
  FROM (
    SELECT regexp_extract(line, '{PATTERN}', {NAMES!r}) AS m
    FROM read_csv([{listing}], columns = {{'line': 'VARCHAR'}}, delim = '\x1f', quote = '', escape = '',
                  header = false, auto_detect = false, ignore_errors = true)
  )
  WHERE m.secs <> ''
) TO '{out}' (FORMAT parquet, COMPRESSION zstd)
""")
print(con.execute(f"SELECT count(*) FROM '{out}'").fetchone()[0])
