#!/usr/bin/env python3
"""The polars way, without regular expressions: one string column per line, split on spaces
(`str.splitn`), typed with non-strict casts so a malformed line becomes no row, and zstd Parquet
partitioned by day (`sink_parquet(PartitionBy(...))`). Prints the rows written.
Usage: load_polars.py OUT_DIR FILE..."""
import sys

import polars as pl

out, files = sys.argv[1], sys.argv[2:]
lf = pl.scan_csv(files, has_header=False, separator="\x1f", quote_char=None, schema={"line": pl.Utf8},
                 encoding="utf8-lossy")
# Squid native pads only the duration (%6tr): the timestamp is the text before the first space, and the
# rest, trimmed, is nine fields one space apart (the last, the content type, is never empty).
head = pl.col("line").str.splitn(" ", 2)
fields = head.struct.field("field_1").str.strip_chars_start(" ").str.splitn(" ", 9)
f = [fields.struct.field(f"field_{i}") for i in range(9)]
secs = head.struct.field("field_0").str.splitn(".", 2)
lf = (lf.select(
          ((secs.struct.field("field_0").cast(pl.Int64, strict=False) * 1000
            + secs.struct.field("field_1").cast(pl.Int64, strict=False)).cast(pl.Datetime("ms"))).alias("ts"),
          f[0].cast(pl.Int64, strict=False).alias("duration_ms"), f[1].alias("client_ip"),
          f[2].str.splitn("/", 2).struct.field("field_0").alias("cache_result"),
          f[2].str.splitn("/", 2).struct.field("field_1").cast(pl.Int32, strict=False).alias("status"),
          f[3].cast(pl.Int64, strict=False).alias("response_bytes"), f[4].alias("method"), f[5].alias("url"),
          f[5].str.splitn("/", 4).struct.field("field_2").alias("host"), f[6].alias("username"),
          f[7].str.splitn("/", 2).struct.field("field_0").alias("hierarchy"),
          f[7].str.splitn("/", 2).struct.field("field_1").alias("server_ip"), f[8].alias("content_type"))
      .filter(pl.all_horizontal(pl.col("ts", "duration_ms", "status", "response_bytes", "content_type")
                                .is_not_null()))
      .with_columns(pl.col("ts").dt.strftime("%Y-%m-%d").alias("date")))
lf.sink_parquet(pl.PartitionBy(out, key="date"), compression="zstd", mkdir=True)
print(pl.scan_parquet(f"{out}/**/*.parquet").select(pl.len()).collect().item())
