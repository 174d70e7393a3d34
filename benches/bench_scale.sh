#!/usr/bin/env bash
# The scale-out benchmark: generates ~SIZE of office traffic with planted incidents (seeded), then times, in one
# run, ingest into a local lake against ingest into an S3 lake (a moto server on localhost), and the built-in
# detection pack over the local lake run locally against the same run on a Ballista cluster on this machine
# (a scheduler and EXECUTORS executors). It checks that both lakes hold the same rows and that both detect runs
# wrote the same findings. Usage: [EXECUTORS=2] [EXECUTOR_MEMORY=6G] benches/bench_scale.sh [SIZE=2G]
set -euo pipefail
SIZE=${1:-2G}
EXECUTORS=${EXECUTORS:-2}
EXECUTOR_MEMORY=${EXECUTOR_MEMORY:-6G}
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --bin trawl --example generate
BIN=$(realpath "$TARGET/release/trawl")
python3 -c 'import moto.server, boto3' 2>/dev/null \
  || python3 -m pip install --quiet --disable-pip-version-check 'moto[server]'
DATA=benches/data/incidents-$SIZE
if [ ! -d "$DATA" ]; then
  "$TARGET/release/examples/generate" --incidents --out "$DATA" --bytes "$SIZE" --seed 42
fi
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1 after 30 s" >&2
  return 1
}
# One timed command: wall seconds, CPU seconds and peak RSS into $WORK/times, its output to $WORK/$1.out.
timed() {
  local name=$1
  shift
  /usr/bin/time -o "$WORK/$name.time" -f "%e %U %S %M" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || {
    echo "$name failed:" >&2
    tail -20 "$WORK/$name.err" >&2
    exit 1
  }
  read -r wall user sys rss <"$WORK/$name.time"
  printf '| %-34s | %8.2f | %8.2f | %9d MiB |\n' "$name" "$wall" "$(awk "BEGIN{print $user + $sys}")" $((rss / 1024)) \
    >>"$WORK/times"
}

MB=$(du -smL --apparent-size "$DATA" | cut -f1)
echo "input: $DATA, $MB MB; trawl $("$BIN" --version | cut -d' ' -f2)," \
  "moto $(python3 -c 'import moto; print(moto.__version__)'), $(nproc) cores"

# Ingest: a local lake, then the same files into a bucket on a moto server (which keeps objects in memory).
timed "ingest, local lake" "$BIN" ingest --quiet --tz Asia/Tokyo --lake "$WORK/lake" "$DATA"
MOTO=$(free_port)
python3 -m moto.server -H 127.0.0.1 -p "$MOTO" >"$WORK/moto.log" 2>&1 &
PIDS+=($!)
wait_port "$MOTO"
curl -sf -X PUT "http://127.0.0.1:$MOTO/scale" >/dev/null
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 \
  AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO" AWS_ALLOW_HTTP=true
timed "ingest, S3 lake (moto)" "$BIN" ingest --quiet --tz Asia/Tokyo --lake s3://scale/lake "$DATA"
COUNT="SELECT (SELECT count(*) FROM proxy) AS proxy, (SELECT count(*) FROM firewall) AS firewall, \
(SELECT count(*) FROM rejects) AS rejects"
local_rows=$("$BIN" query --lake "$WORK/lake" --format csv "$COUNT")
s3_rows=$("$BIN" query --lake s3://scale/lake --format csv "$COUNT")
[ "$local_rows" = "$s3_rows" ] || { echo "the lakes differ: local $local_rows, S3 $s3_rows" >&2; exit 1; }
LAKE_MB=$(du -sm "$WORK/lake" | cut -f1)

# The built-in pack over the local lake: locally, then through a scheduler and its executors on this machine.
timed "detect, local" "$BIN" detect --lake "$WORK/lake" --all --out "$WORK/findings-local"
SCHED=$(free_port)
TRAWL_LOG=warn "$BIN" cluster scheduler --bind "127.0.0.1:$SCHED" >"$WORK/scheduler.log" 2>&1 &
PIDS+=($!)
wait_port "$SCHED"
for i in $(seq "$EXECUTORS"); do
  port=$(free_port)
  TRAWL_LOG=warn "$BIN" cluster executor --scheduler "127.0.0.1:$SCHED" --bind "127.0.0.1:$port" \
    --memory-limit "$EXECUTOR_MEMORY" --work-dir "$WORK/executor-$i" >"$WORK/executor-$i.log" 2>&1 &
  PIDS+=($!)
  wait_port "$port"
done
sleep 2 # executors register with the scheduler
timed "detect, cluster ($EXECUTORS executors)" "$BIN" detect --lake "$WORK/lake" --all \
  --cluster "df://127.0.0.1:$SCHED" --out "$WORK/findings-cluster"
# Each server's peak RSS, which the client's does not include.
for i in $(seq 0 $((${#PIDS[@]} - 1))); do
  [ "$i" -eq 0 ] && continue # moto
  name=$([ "$i" -eq 1 ] && echo scheduler || echo "executor $((i - 1))")
  echo "peak RSS of the $name: $(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/${PIDS[$i]}/status") MiB" >>"$WORK/servers"
done
echo "rows (local and S3 lakes alike): $local_rows" | tr '\n' ' '
echo
echo "local lake: $LAKE_MB MB of Parquet"
echo
echo "| run                                | wall s   | CPU s    | peak RSS      |"
echo "|------------------------------------|---------:|---------:|--------------:|"
cat "$WORK/times"
echo
cat "$WORK/servers"
echo
# Where the time went: each detection's seconds (its summary's column), locally and on the cluster.
python3 - "$WORK" <<'EOF'
import csv, sys
def seconds(side):
    with open(f"{sys.argv[1]}/findings-{side}/summary.csv", encoding="utf-8-sig") as f:
        return {r["detection"]: float(r["seconds"]) for r in csv.DictReader(f)}
local, cluster = seconds("local"), seconds("cluster")
print("| detection                      | local s | cluster s |")
print("|--------------------------------|--------:|----------:|")
for d in sorted(local, key=lambda d: -cluster.get(d, 0)):
    print(f"| {d:<30} | {local[d]:7.2f} | {cluster.get(d, float('nan')):9.2f} |")
EOF

# Figures first, so that a mismatch below still leaves them on screen.
# The summary's seconds column differs by nature; every finding must not.
diff -r -x summary.csv "$WORK/findings-local" "$WORK/findings-cluster" >/dev/null \
  || { echo "the cluster's findings differ from the local ones" >&2; exit 1; }
same_summary=$(python3 - "$WORK" <<'EOF'
import csv, sys
def rows(side):
    with open(f"{sys.argv[1]}/findings-{side}/summary.csv", encoding="utf-8-sig") as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]
print("yes" if rows("local") == rows("cluster") else "no")
EOF
)
[ "$same_summary" = yes ] || { echo "the cluster's summary differs from the local one" >&2; exit 1; }
echo "findings of the local and cluster runs identical"
