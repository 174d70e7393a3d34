#!/usr/bin/env python3
"""The polars way: one string column per line, a regular expression, zstd Parquet.
Usage: load_polars.py OUT.parquet FILE..."""
import sys

import polars as pl

PATTERN = (r"^(?<secs>\d+)\.(?<millis>\d+)\s+(?<duration_ms>\d+)\s+(?<client_ip>\S+)\s+(?<cache_result>[^/\s]+)/"
           r"(?<status>\d+)\s+(?<response_bytes>\d+)\s+(?<method>\S+)\s+(?<url>\S+)\s+(?<username>\S+)\s+"
           r"(?<hierarchy>[^/\s]+)/(?<server_ip>\S+)\s+(?<content_type>\S+)")

out, files = sys.argv[1], sys.argv[2:]
lf = pl.concat([
    pl.scan_csv(f, has_header=False, separator="\x1f", quote_char=None, schema={"line": pl.Utf8},
                encoding="utf8-lossy")
    for f in files
])
lf = (lf.select(pl.col("line").str.extract_groups(PATTERN).alias("m")).unnest("m")
      .filter(pl.col("secs").is_not_null())
      .with_columns((pl.col("secs").cast(pl.Int64) * 1000 + pl.col("millis").cast(pl.Int64))
                    .cast(pl.Datetime("ms")).alias("ts"),
                    pl.col("duration_ms").cast(pl.Int64), pl.col("status").cast(pl.Int32),
                    pl.col("response_bytes").cast(pl.Int64))
      .drop("secs", "millis"))
lf.sink_parquet(out, compression="zstd")
print(pl.scan_parquet(out).select(pl.len()).collect().item())
