#!/usr/bin/env python3
"""The lake is standard: Delta readers and plain-Parquet readers read what trawl wrote.

Usage: interop.py TRAWL_BINARY
Builds a lake with some history (two ingests, a compact, then a cut last line read again whole,
which rewrites a Parquet file), then checks that trawl, delta-rs's Python reader and the
plain-Parquet readers (DuckDB, polars, pyarrow, pandas, and Spark where pyspark and Java are
installed) count the same rows in every table, reading the live files the way README says:
from the tables' symlink-format manifests. Also: the same `date` filter gives the same count in
each, DuckDB sees the same per-day split, and a chosen row's values.
"""
import glob
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
from deltalake import DeltaTable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from graduate import DATED, TABLES, live_files, spark_session  # noqa: E402  (README's readers, shared)

ROOT = Path(__file__).resolve().parent.parent
# A filter README gives for every reader; it spans the cut-line log's day and testdata's.
DAYS = ("2024-04-30", "2024-05-01")


def duckdb_count(con, lake, table, where=""):
    """README's DuckDB recipe: the manifest's file list, `date` kept a string."""
    con.execute(f"SET VARIABLE files = (SELECT list(path) FROM read_csv("
                f"'{lake}/{table}/_symlink_format_manifest/**/manifest', columns={{'path': 'VARCHAR'}}, "
                f"header=false, delim='\\t', quote=''))")
    hive = ", hive_partitioning=true, hive_types={'date': 'VARCHAR'}" if table in DATED else ""
    return con.execute(f"SELECT count(*) FROM read_parquet(getvariable('files'){hive}) {where}").fetchone()[0]


def polars_frame(lake, table):
    return pl.scan_parquet(live_files(lake, table), hive_partitioning=True, hive_schema={"date": pl.String})


def pyarrow_dataset(lake, table):
    part = ds.partitioning(pa.schema([("date", pa.string())]), flavor="hive")
    return ds.dataset(live_files(lake, table), format="parquet", partitioning=part,
                      partition_base_dir=f"{lake}/{table}")


def trawl(binary, *args):
    out = subprocess.run([binary, *args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"trawl {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout


def squid_line(i, host):
    return f"{1714550400 + i}.{i % 1000:03d}    567 10.0.0.{i % 250} TCP_MISS/200 5432 GET http://{host}/{i} u1 HIER_DIRECT/1.2.3.4 text/html"


def build_lake(binary, tmp):
    """Two ingests, a compact (default retention: the merged files stay on disk a week), then a
    grown log whose cut last line is read again whole (its Parquet file is rewritten)."""
    lake, logs = tmp / "lake", tmp / "logs"
    logs.mkdir()
    cut = logs / "cut.log"
    whole = "\n".join(squid_line(i, "cut.example") for i in range(11))
    cut.write_text(whole[:-3])
    (logs / "second.log").write_text("".join(squid_line(i, "second.example") + "\n" for i in range(40)))
    trawl(binary, "ingest", "--quiet", "--tz", "Asia/Tokyo", "--lake", str(lake),
          "--squid-conf", str(ROOT / "testdata/squid-custom/squid.conf"), str(ROOT / "testdata"), str(cut))
    trawl(binary, "ingest", "--quiet", "--lake", str(lake), str(logs / "second.log"))
    trawl(binary, "compact", "--lake", str(lake))
    with open(cut, "a") as f:
        f.write(whole[-3:] + "\n" + squid_line(11, "cut.example") + "\n")
    trawl(binary, "ingest", "--quiet", "--lake", str(lake), str(cut))
    return lake


def main():
    binary = sys.argv[1]
    results = []

    def check(ok, what):
        results.append(ok)
        print(f"{'ok' if ok else 'FAIL'}: {what}")

    con = duckdb.connect()
    spark, no_spark = spark_session()
    if spark is None:
        print(f"skip: Spark ({no_spark}; README's Spark lines are not checked here)")
    with tempfile.TemporaryDirectory() as tmp:
        lake = build_lake(binary, Path(tmp))

        def trawl_n(sql):
            return json.loads(trawl(binary, "query", "--lake", str(lake), "--format", "json", sql))[0]["n"]

        on_disk = len([p for p in glob.glob(f"{lake}/proxy/date=*/*.parquet")])
        check(on_disk > len(live_files(lake, "proxy")),
              f"the history left proxy files no version names on disk ({on_disk} on disk, "
              f"{len(live_files(lake, 'proxy'))} live): a glob would read them")
        for table in TABLES:
            n = {"trawl": trawl_n(f"SELECT count(*) AS n FROM {table}"),
                 "deltalake": DeltaTable(str(lake / table)).to_pyarrow_table().num_rows,
                 "duckdb": duckdb_count(con, lake, table),
                 "polars": polars_frame(lake, table).select(pl.len()).collect().item(),
                 "pyarrow": pyarrow_dataset(lake, table).count_rows(),
                 "pandas": len(pyarrow_dataset(lake, table).to_table().to_pandas())}
            if spark is not None:
                n["spark"] = spark.read.option("basePath", f"{lake}/{table}").parquet(*live_files(lake, table)).count()
            ok = len(set(n.values())) == 1 and n["trawl"] > 0
            check(ok, f"{table}: " + ", ".join(f"{k} {v}" for k, v in n.items()))

        # The same filter on `date` (a string everywhere) in each reader.
        where = f"WHERE date BETWEEN '{DAYS[0]}' AND '{DAYS[1]}'"
        n = {"trawl": trawl_n(f"SELECT count(*) AS n FROM proxy {where}"),
             "duckdb": duckdb_count(con, lake, "proxy", where),
             "polars": pl.SQLContext(proxy=polars_frame(lake, "proxy"))
                       .execute(f"SELECT count(*) AS n FROM proxy {where}").collect()["n"][0],
             "pyarrow": pyarrow_dataset(lake, "proxy").count_rows(
                 filter=(ds.field("date") >= DAYS[0]) & (ds.field("date") <= DAYS[1])),
             "deltalake": DeltaTable(str(lake / "proxy")).to_pyarrow_dataset().count_rows(
                 filter=(ds.field("date") >= DAYS[0]) & (ds.field("date") <= DAYS[1]))}
        if spark is not None:
            df = spark.read.option("basePath", f"{lake}/proxy").parquet(*live_files(lake, "proxy"))
            df.createOrReplaceTempView("proxy")
            n["spark"] = spark.sql(f"SELECT count(*) AS n FROM proxy {where}").collect()[0]["n"]
        check(len(set(n.values())) == 1 and n["trawl"] > 0, f"{where}: " + ", ".join(f"{k} {v}" for k, v in n.items()))
        types = {"duckdb": con.execute("SELECT typeof(date) FROM read_parquet(getvariable('files'), "
                                       "hive_partitioning=true, hive_types={'date': 'VARCHAR'}) LIMIT 1").fetchone()[0],
                 "polars": str(polars_frame(lake, "proxy").collect_schema()["date"]),
                 "pyarrow": str(pyarrow_dataset(lake, "proxy").schema.field("date").type)}
        expected_types = {"duckdb": "VARCHAR", "polars": "String", "pyarrow": "string"}
        if spark is not None:
            types["spark"] = df.schema["date"].dataType.simpleString()
            expected_types["spark"] = "string"
        check(types == expected_types, f"date is a string: {types}")

        days_trawl = trawl(binary, "query", "--lake", str(lake), "--format", "csv",
                           "SELECT date, count(*) AS n FROM proxy GROUP BY date ORDER BY date").split("\n")[1:-1]
        duckdb_count(con, lake, "proxy")
        days_duck = [f"{d},{n}" for d, n in con.execute(
            "SELECT date, count(*) FROM read_parquet(getvariable('files'), hive_partitioning=true, "
            "hive_types={'date': 'VARCHAR'}) GROUP BY 1 ORDER BY 1").fetchall()]
        check(days_trawl == days_duck, f"per-day counts agree ({len(days_duck)} days)")
        row = con.execute(
            "SELECT epoch_ms(ts), client_ip, username, host, port, status FROM read_parquet(getvariable('files'), "
            "hive_partitioning=true, hive_types={'date': 'VARCHAR'}) "
            "WHERE source_file LIKE '%proxy01/access.log' AND source_line = 5").fetchall()
        expected = [(1677971737789, "2001:db8::1", "admin", "example.com", 80, 404)]
        check(row == expected, f"duckdb reads a chosen row as trawl wrote it: {row}")
        cut_rows = duckdb_count(con, lake, "proxy", "WHERE host = 'cut.example'")
        check(cut_rows == 12, f"the rewritten file's rows once each: {cut_rows} of 12")
    failures = results.count(False)
    print(f"interop: {len(results) - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
