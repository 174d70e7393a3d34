#!/usr/bin/env bash
# The hunt benchmark: 10,000 indicators (seeded; some from the lake, most nowhere in it) swept by `trawl hunt`,
# and DuckDB doing the same joins over the same Parquet files. Uses the lake given, or generates ~1G of
# incident traffic and ingests it as bench_detect.sh does. Usage: benches/bench_hunt.sh [LAKE] [COUNT=10000] [REPS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
LAKE=${1:-}
COUNT=${2:-10000}
REPS=${3:-3}
cargo build --release --bin trawl
python3 -c 'import duckdb' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check duckdb
if [ -z "$LAKE" ]; then
  cargo build --release --example generate
  DATA=benches/data/incidents-1G
  LAKE=benches/data/incidents-1G-lake
  [ -d "$DATA" ] || "$TARGET/release/examples/generate" --incidents --out "$DATA" --bytes 1G --seed 42
  [ -d "$LAKE" ] || "$TARGET/release/trawl" ingest --quiet --tz Asia/Tokyo --lake "$LAKE" "$DATA"
fi
python3 benches/bench_hunt.py --lake "$LAKE" --trawl "$TARGET/release/trawl" --count "$COUNT" --reps "$REPS"
