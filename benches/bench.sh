#!/usr/bin/env bash
# The benchmark: generates ~SIZE of Squid native log (seeded, FILES files), then times cat, zcat, trawl,
# DuckDB and polars on the same files in one run, and one core's parse-only and encode-only figures;
# then the detect pack against DuckDB (bench_detect.sh) unless NO_DETECT=1.
# Usage: [FILES=4] benches/bench.sh [SIZE=400M] [REPS=3]
set -euo pipefail
SIZE=${1:-400M}
REPS=${2:-3}
FILES=${FILES:-4}
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --bin trawl --example generate --example parsers
python3 -c "import duckdb, polars" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check duckdb polars ||
  echo "duckdb and polars could not be installed here: their rows will be missing" >&2
DATA=benches/data/squid-$SIZE
if [ ! -d "$DATA" ]; then
  "$TARGET/release/examples/generate" --out "$DATA" --bytes "$SIZE" --files $FILES --seed 42
fi
if [ ! -d "$DATA-gz" ]; then
  "$TARGET/release/examples/generate" --out "$DATA-gz" --bytes "$SIZE" --files $FILES --seed 42 --gzip
fi
for f in ifilter firewall; do
  if [ ! -d "benches/data/$f-$SIZE" ]; then
    "$TARGET/release/examples/generate" --out "benches/data/$f-$SIZE" --bytes "$SIZE" --files $FILES --seed 42 --format $f
  fi
done
python3 benches/bench.py --data "$DATA" --gz-data "$DATA-gz" --ifilter-data "benches/data/ifilter-$SIZE" \
  --firewall-data "benches/data/firewall-$SIZE" --trawl "$TARGET/release/trawl" --parsers "$TARGET/release/examples/parsers" --reps "$REPS"
if [ "${NO_DETECT:-0}" != 1 ]; then
  benches/bench_detect.sh "$SIZE" "$REPS"
fi
