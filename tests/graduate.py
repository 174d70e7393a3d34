#!/usr/bin/env python3
"""Other engines read a trawl lake: README's "Graduating" commands, run for real.

Usage: graduate.py [LAKE ...]
Counts each table's rows (and, for tables with dates, rows per `date`) in every reader that is
installed: Spark (pyspark with a Java runtime), DuckDB, polars and the `deltalake` package. The
plain-Parquet readers take their files from the tables' symlink-format manifests, as README
says; `deltalake` reads the Delta log. For each lake named on the command line, or else each
lake path read from standard input (one a line, so a caller can change the lake between two
lines and keep one Spark session), prints one JSON line:

    {"counts": {"spark": {"proxy": {"rows": 93, "days": {"2024-05-01": 7, ...}}, ...}, ...},
     "skipped": {"spark": "no Java runtime (java not on PATH, JAVA_HOME unset)"}}

A reader that is not installed is listed under "skipped" with the reason, never counted.
"""
import glob
import json
import os
import shutil
import sys
from pathlib import Path

TABLES = ["proxy", "firewall", "rejects", "ingests"]
DATED = {"proxy", "firewall"}


def live_files(lake, table):
    """The files a table's newest version names, from its symlink-format manifest (README)."""
    return [line for m in sorted(glob.glob(f"{lake}/{table}/_symlink_format_manifest/**/manifest", recursive=True))
            for line in open(m).read().splitlines()]


def spark_session():
    """One local Spark session (README's settings), or None and the reason it cannot start."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return None, "no Java runtime (java not on PATH, JAVA_HOME unset)"
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return None, "pyspark is not installed (python3 -m pip install pyspark)"
    # The JIT's first tier only: the JVM starts in about half the time, and jobs this short
    # never gain from the second.
    os.environ.setdefault("JDK_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1")
    spark = (SparkSession.builder.master("local[1]")
             .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
             .config("spark.sql.shuffle.partitions", "1")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark, None


def spark_reader(spark):
    def count(lake, table):
        files = live_files(lake, table)
        if not files:
            return {"rows": 0, "days": {}}
        # basePath: the `date=` folders under it become the `date` column.
        spark.read.option("basePath", f"{lake}/{table}").parquet(*files).createOrReplaceTempView(table)
        if table not in DATED:
            return {"rows": spark.sql(f"SELECT count(*) AS n FROM {table}").collect()[0]["n"], "days": {}}
        days = {r["date"]: r["n"] for r in spark.sql(f"SELECT date, count(*) AS n FROM {table} GROUP BY date").collect()}
        return {"rows": sum(days.values()), "days": days}
    return count


def duckdb_reader(duckdb):
    con = duckdb.connect()

    def count(lake, table):
        if not live_files(lake, table):
            return {"rows": 0, "days": {}}
        con.execute(f"SET VARIABLE files = (SELECT list(path) FROM read_csv("
                    f"'{lake}/{table}/_symlink_format_manifest/**/manifest', columns={{'path': 'VARCHAR'}}, "
                    f"header=false, delim='\\t', quote=''))")
        hive = ", hive_partitioning=true, hive_types={'date': 'VARCHAR'}" if table in DATED else ""
        scan = f"read_parquet(getvariable('files'){hive})"
        days = {}
        if table in DATED:
            days = dict(con.execute(f"SELECT date, count(*) FROM {scan} GROUP BY date").fetchall())
        return {"rows": con.execute(f"SELECT count(*) FROM {scan}").fetchone()[0], "days": days}
    return count


def polars_reader(pl):
    def count(lake, table):
        files = live_files(lake, table)
        if not files:
            return {"rows": 0, "days": {}}
        frame = pl.scan_parquet(files, hive_partitioning=True, hive_schema={"date": pl.String})
        days = {}
        if table in DATED:
            grouped = frame.group_by("date").agg(pl.len().alias("n")).collect()
            days = dict(zip(grouped["date"].to_list(), grouped["n"].to_list()))
        return {"rows": frame.select(pl.len()).collect().item(), "days": days}
    return count


def deltalake_reader(DeltaTable):
    def count(lake, table):
        # The Delta log names the live files: no manifest needed.
        dataset = DeltaTable(f"{lake}/{table}").to_pyarrow_dataset()
        days = {}
        if table in DATED:
            grouped = dataset.to_table(columns=["date"]).group_by("date").aggregate([([], "count_all")])
            days = dict(zip(grouped["date"].to_pylist(), grouped["count_all"].to_pylist()))
        return {"rows": dataset.count_rows(), "days": days}
    return count


def readers():
    """Every reader that is installed, by name; and the reasons the others are not."""
    found, skipped = {}, {}
    spark, why = spark_session()
    if spark is None:
        skipped["spark"] = why
    else:
        found["spark"] = spark_reader(spark)
    for name, load in [("duckdb", lambda: duckdb_reader(__import__("duckdb"))),
                       ("polars", lambda: polars_reader(__import__("polars"))),
                       ("deltalake", lambda: deltalake_reader(__import__("deltalake").DeltaTable))]:
        try:
            found[name] = load()
        except ImportError:
            skipped[name] = f"{name} is not installed (python3 -m pip install {name})"
    return found, skipped


def main():
    found, skipped = readers()
    lakes = sys.argv[1:] or (line.rstrip("\n") for line in sys.stdin)
    for lake in lakes:
        lake = str(Path(lake).resolve())
        counts = {name: {t: count(lake, t) for t in TABLES} for name, count in found.items()}
        print(json.dumps({"counts": counts, "skipped": skipped}), flush=True)


if __name__ == "__main__":
    main()
