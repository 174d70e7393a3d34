#!/usr/bin/env bash
# The detect benchmark: generates ~SIZE of office traffic with planted incidents (seeded), ingests it into a
# fresh lake, then times `trawl detect` (whole pack and each detection alone) against DuckDB running the same
# SQL over the same Parquet files. Usage: benches/bench_detect.sh [SIZE=1G] [REPS=3] [ID,...]
set -euo pipefail
SIZE=${1:-1G}
REPS=${2:-3}
ONLY=${3:-}
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --bin trawl --example generate
python3 -c 'import duckdb' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check duckdb
DATA=benches/data/incidents-$SIZE
LAKE=benches/data/incidents-$SIZE-lake
if [ ! -d "$DATA" ]; then
  "$TARGET/release/examples/generate" --incidents --out "$DATA" --bytes "$SIZE" --seed 42
fi
# A fresh lake each run, so the Parquet files are what this build's ingest writes.
rm -rf "$LAKE"
"$TARGET/release/trawl" ingest --quiet --tz Asia/Tokyo --lake "$LAKE" "$DATA"
python3 benches/bench_detect.py --lake "$LAKE" --trawl "$TARGET/release/trawl" --reps "$REPS" --only "$ONLY"
