#!/usr/bin/env bash
# Bucket benchmark (issue #19): electra-convert reading the ELECTRA-base pretraining checkpoint
# straight from s3:// (the index, then ranged GETs of only the planned tensors) vs downloading
# every object of the checkpoint and converting the local copy, through the same rate-limited
# link, measured side by side in one run.
#
#   benches/remote.sh                      # RUNS=3, RATE=100e6 bytes/s, plus an unthrottled pass
#   BIN=path/to/electra-convert ...        # time this binary (default: build the release one and
#                                          # time a copy of it, so a rebuild mid-run changes nothing)
#   PYTHON=.venv/bin/python ...            # a Python with TensorFlow, only to generate the checkpoint
#   KEEP_BUCKET=1 ...                      # keep the server's 1.43 GB copy for the next run
#
# Rows, RUNS times each, interleaved (the tool and its baseline swap order every round), on a
# link of RATE bytes/s and on an unlimited one ("loopback"):
#   s3 discriminator    electra-convert --model discriminator --json s3://ckpt/base -o OUT
#   s3 both             electra-convert --model both ...
#   s3 inspect          electra-convert inspect --json s3://ckpt/base            (index only)
#   download+<row>      curl: LIST the prefix and GET every object (one connection), then the same
#                       command on the local copy: the whole thing is timed
#   local <row>         the same command on bench-data/base, no bucket (where the time goes)
# Each timed command starts with its previous outputs deleted and `sync` run, outside the timer.
# /usr/bin/time -f "%e %M": wall time, peak RSS (the largest process of the command's tree).
#
# Server: s3rver 3.7.1 (npm, pinned, installed into $BENCH_DATA/s3rver), which serves objects from
# files and reads ranges straight from them (an 8 MiB ranged GET of the 1.43 GB object: ~0.03 s).
# moto 5.2.5, the test servers' S3, was tried first and is unfit: 0.84-0.97 s per 8 MiB ranged GET
# of the same object (< 10 MB/s), far below the link rate under test. The objects are uploaded
# with unsigned PUTs (s3rver accepts them); the tool signs with s3rver's fixed S3RVER/S3RVER key.
#
# Link: benches/throttle_proxy.py in front of the server: one shared token bucket on the
# server -> client direction. Bytes are counted twice, by the tool (`--json`: `fetched`) and by the
# proxy (payload = response bodies; wire = everything the client received, HTTP heads included),
# and requests the same way. Targets of #19: payload fetched <= 1.05 x needed (needed = the index
# + the tensors the command reads, the tool's `bytes_needed`; for inspect the index alone), wall
# <= 1.2 x needed / RATE + 1 s (throttled link only), peak RSS <= 300 MiB.
#
# Needs: curl, npm (once, for s3rver), python3, /usr/bin/time. Everything temporary goes under
# $BENCH_DATA/remote-work and is deleted at exit; the server's copy of the checkpoint lives in
# $BENCH_DATA/remote-bucket (deleted at exit unless KEEP_BUCKET=1). Servers listen on 127.0.0.1
# only and are stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DATA=${BENCH_DATA:-bench-data}
RUNS=${RUNS:-3}
RATE=${RATE:-100e6}
S3RVER_VERSION=3.7.1
BUCKET=ckpt
PREFIX=base # key prefix in the bucket
STEP=model.ckpt-766000
CKPT_DIR="$DATA/base"
W="$DATA/remote-work"
STORE="$DATA/remote-bucket"

die() { echo "remote.sh: $*" >&2; exit 1; }
for tool in curl python3 /usr/bin/time; do command -v "$tool" >/dev/null || die "$tool is needed"; done

if [ ! -f "$CKPT_DIR/$STEP.index" ]; then
  echo "generating $CKPT_DIR ..." >&2
  "$PYTHON" benches/make_base_checkpoint.py "$CKPT_DIR" >&2
fi

S3RVER="$DATA/s3rver/node_modules/.bin/s3rver"
if [ ! -x "$S3RVER" ] || [ "$("$S3RVER" --version)" != "$S3RVER_VERSION" ]; then
  command -v npm >/dev/null || die "npm is needed to install s3rver"
  mkdir -p "$DATA/s3rver"
  npm install --prefix "$DATA/s3rver" --save-exact --no-audit --no-fund --loglevel=error \
    "s3rver@$S3RVER_VERSION" >/dev/null
fi

rm -rf "$W"
mkdir -p "$W/tmp"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done # <= 5 s each
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$W"
  [ "${KEEP_BUCKET:-0}" = 1 ] || rm -rf "$STORE"
}
trap cleanup EXIT

if [ -z "${BIN:-}" ]; then
  nice cargo build --release --quiet -p electra-convert-cli
  BIN=target/release/electra-convert
fi
BIN_SOURCE=$BIN
cp "$BIN" "$W/electra-convert"
BIN="$W/electra-convert"
export TMPDIR="$W/tmp" # the tool's sparse cache of the shard goes here, not to /tmp

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
# wait_until SECONDS CMD...: run CMD every 0.1 s until it succeeds, at most SECONDS.
wait_until() {
  local limit=$1 t0=$SECONDS
  shift
  until "$@" >/dev/null 2>&1; do
    [ $((SECONDS - t0)) -lt "$limit" ] || return 1
    sleep 0.1
  done
}
json_get() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# --- the server, holding the checkpoint ------------------------------------------------------
SERVER_PORT=$(free_port)
mkdir -p "$STORE"
nice "$S3RVER" -d "$STORE" -a 127.0.0.1 -p "$SERVER_PORT" -s --configure-bucket "$BUCKET" \
  >"$W/s3rver.log" 2>&1 &
PIDS+=($!)
SERVER="http://127.0.0.1:$SERVER_PORT"
wait_until 30 curl -sf "$SERVER/$BUCKET?list-type=2" || die "s3rver did not start: $(cat "$W/s3rver.log")"
for f in checkpoint "$STEP.index" "$STEP.data-00000-of-00001"; do
  size=$(stat -c %s "$CKPT_DIR/$f")
  have=$(curl -sf -I "$SERVER/$BUCKET/$PREFIX/$f" | tr -d '\r' | awk 'tolower($1) == "content-length:" { print $2 }' || true)
  if [ "$have" != "$size" ]; then
    curl -sSf --max-time 600 -T "$CKPT_DIR/$f" "$SERVER/$BUCKET/$PREFIX/$f" >/dev/null
  fi
done

# --- the links: one proxy at RATE, one unlimited --------------------------------------------
start_proxy() { # start_proxy NAME RATE: sets NAME_PORT and NAME_PID
  local name=$1 rate=$2
  python3 benches/throttle_proxy.py --upstream "$SERVER_PORT" --rate "$rate" \
    --stats "$W/$name.json" --port-file "$W/$name.port" --log "$W/$name.requests.log" \
    --interval 5 2>"$W/$name.log" &
  PIDS+=($!)
  eval "${name}_PID=$!"
  wait_until 10 test -s "$W/$name.port" || die "proxy $name did not start: $(cat "$W/$name.log")"
  eval "${name}_PORT=$(cat "$W/$name.port")"
}
start_proxy throttled "$RATE"
start_proxy loopback 0

# snap LINK DEST: fresh counters of LINK's proxy (asked with SIGUSR1, waited for, <= 5 s).
snap() {
  local link=$1 dest=$2 pid file before
  pid=$(eval echo "\$${link}_PID")
  file="$W/$link.json"
  before=$(json_get "$file" dumps)
  kill -USR1 "$pid"
  for _ in $(seq 100); do
    if [ "$(json_get "$file" dumps)" -gt "$before" ]; then
      cp "$file" "$dest"
      return 0
    fi
    sleep 0.05
  done
  die "proxy $link did not write its counters"
}

export AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
URL="s3://$BUCKET/$PREFIX"
OUT="$W/out"
DL="$W/download"

# download ENDPOINT: LIST the prefix, then GET every object into $DL (one curl, one connection).
download() {
  local endpoint=$1 key args=()
  mkdir -p "$DL"
  for key in $(curl -sSf --max-time 60 "$endpoint/$BUCKET?list-type=2&prefix=$PREFIX/" |
    grep -o '<Key>[^<]*</Key>' | sed 's/<Key>\(.*\)<\/Key>/\1/'); do
    args+=(-o "$DL/${key#"$PREFIX"/}" "$endpoint/$BUCKET/$key")
  done
  curl -sSf --max-time 600 "${args[@]}"
}
# run_cmd ROW ENDPOINT: the command of ROW (stdout: the tool's JSON where it has one).
run_cmd() {
  local row=$1 endpoint=$2
  case $row in
    s3-discriminator | s3-both)
      AWS_ENDPOINT_URL=$endpoint "$BIN" --model "${row#s3-}" --json --quiet "$URL" -o "$OUT" ;;
    s3-inspect) AWS_ENDPOINT_URL=$endpoint "$BIN" inspect --json "$URL" ;;
    download+discriminator | download+both)
      download "$endpoint" && "$BIN" --model "${row#download+}" --quiet "$DL" -o "$OUT" >/dev/null ;;
    download+inspect) download "$endpoint" && "$BIN" inspect --json "$DL" >/dev/null ;;
    local-discriminator | local-both) "$BIN" --model "${row#local-}" --quiet "$CKPT_DIR" -o "$OUT" ;;
    *) die "unknown row $row" ;;
  esac
}
export -f run_cmd download die
export BIN URL OUT DL BUCKET PREFIX CKPT_DIR

RESULTS="$W/results.jsonl"
: >"$RESULTS"
# measure LINK ROW RUN: one timed run of ROW over LINK's proxy, appended to $RESULTS.
measure() {
  local link=$1 row=$2 run=$3 endpoint=""
  [ "$link" = none ] || endpoint="http://127.0.0.1:$(eval echo "\$${link}_PORT")"
  rm -rf "$OUT" "$DL" "${TMPDIR:?}"/*
  sync
  [ "$link" = none ] || snap "$link" "$W/before.json"
  if ! /usr/bin/time -o "$W/time" -f "%e %M" bash -c 'run_cmd "$@"' run_cmd "$row" "$endpoint" \
    >"$W/stdout" 2>"$W/stderr"; then
    cat "$W/stderr" >&2
    die "$row over $link failed"
  fi
  if [ "$link" = none ]; then echo '{}' >"$W/before.json"; echo '{}' >"$W/after.json"; else snap "$link" "$W/after.json"; fi
  python3 - "$link" "$row" "$run" "$W" "$CKPT_DIR/$STEP.index" >>"$RESULTS" <<'EOF'
import json, os, sys
link, row, run, w, index = sys.argv[1:6]
wall, rss = open(os.path.join(w, "time")).read().split()[-2:]
b = json.load(open(os.path.join(w, "before.json")))
a = json.load(open(os.path.join(w, "after.json")))
d = lambda k: a.get(k, 0) - b.get(k, 0)
rec = {"link": link, "row": row, "run": int(run), "wall": float(wall), "rss_kib": int(rss),
       "index_bytes": os.path.getsize(index),
       "payload": d("payload_bytes_upstream_to_client"), "wire": d("bytes_upstream_to_client"),
       "requests": d("requests"), "connections": d("connections"),
       "unparsed": d("unparsed_connections"), "rate": a.get("rate")}
try:
    out = json.load(open(os.path.join(w, "stdout")))
    if isinstance(out, dict) and "fetched" in out:
        rec["tool"] = out["fetched"]
except ValueError:
    pass
print(json.dumps(rec))
EOF
}

echo "binary: copy of ${BIN_SOURCE} (built $(date -u -r "$BIN_SOURCE" '+%F %T UTC')); tree at $(git rev-parse --short HEAD 2>/dev/null || echo '?') with $(git status --porcelain -- crates | wc -l) changed files under crates/" >&2
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# Warm-up (unmeasured): the server's file in the page cache, every command once.
for row in s3-discriminator s3-both s3-inspect download+inspect; do
  rm -rf "$OUT" "$DL"
  run_cmd "$row" "http://127.0.0.1:$loopback_PORT" >/dev/null
done
run_cmd local-discriminator "" >/dev/null

t0=$SECONDS
for run in $(seq "$RUNS"); do
  for link in throttled loopback; do
    for what in discriminator both inspect; do
      if [ $((run % 2)) = 1 ]; then
        measure "$link" "s3-$what" "$run"
        measure "$link" "download+$what" "$run"
      else
        measure "$link" "download+$what" "$run"
        measure "$link" "s3-$what" "$run"
      fi
    done
  done
  measure none local-discriminator "$run"
  measure none local-both "$run"
  echo "round $run of $RUNS done ($((SECONDS - t0)) s)" >&2
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
cp "$RESULTS" "${RESULTS_COPY:-$DATA/remote-results.jsonl}"

python3 - "$RESULTS" "$RATE" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rate = float(sys.argv[2])
MIB = 1 << 20

def med(xs):
    xs = sorted(xs)
    return xs[(len(xs) - 1) // 2]

# Bytes needed per command: the index + the tool's bytes_needed (the same in every run).
needed = {}
for r in rows:
    if "tool" in r:
        needed[r["row"].split("-", 1)[1]] = r["index_bytes"] + r["tool"]["bytes_needed"]
needed["inspect"] = rows[0]["index_bytes"]

print(f"link rate {rate / 1e6:g} MB/s; {len(set(r['run'] for r in rows))} runs; "
      "medians (all runs in brackets); peak RSS = largest of the runs; "
      "fetched = response payload bytes counted by the proxy (the tool's own count in brackets)")
hdr = ("| link | row | needed | fetched | ratio | wire | requests | wall median | target "
       "| peak RSS | bytes | time | RSS |")
print(hdr)
print("|" + "---|" * (hdr.count("|") - 1))
order = ["s3-discriminator", "download+discriminator", "s3-both", "download+both",
         "s3-inspect", "download+inspect", "local-discriminator", "local-both"]
for link in ["throttled", "loopback", "none"]:
    for row in order:
        rs = [r for r in rows if r["link"] == link and r["row"] == row]
        if not rs:
            continue
        what = row.replace("download+", "-").replace("local-", "-").replace("s3-", "-")[1:]
        need = needed[what]
        walls = [r["wall"] for r in rs]
        wall = med(walls)
        rss = max(r["rss_kib"] for r in rs) / 1024
        rss_ok = "PASS" if rss <= 300 else "FAIL"
        if link == "none":
            print(f"| local | {row} | — | — | — | — | — | {wall:.2f} s ({' '.join(f'{x:.2f}' for x in sorted(walls))}) "
                  f"| — | {rss:.1f} MiB | — | — | {rss_ok} |")
            continue
        payload = med([r["payload"] for r in rs])
        wire = med([r["wire"] for r in rs])
        req = med([r["requests"] for r in rs])
        tool = [r["tool"] for r in rs if "tool" in r]
        fetched = f"{payload:,}" + (f" ({med([t['bytes_fetched'] for t in tool]):,})" if tool else "")
        reqs = f"{req}" + (f" ({med([t['requests'] for t in tool])})" if tool else "")
        ratio = payload / need
        bytes_ok = "PASS" if ratio <= 1.05 else "FAIL"
        if link == "throttled":
            target = 1.2 * need / rate + 1
            time_ok = "PASS" if wall <= target else "FAIL"
            target_s = f"{target:.2f} s"
        else:
            target_s, time_ok = "—", "—"
        bad = sum(r["unparsed"] for r in rs)
        note = f" [{bad} unparsed connections]" if bad else ""
        print(f"| {link} | {row} | {need:,} | {fetched} | {ratio:.3f} | {wire:,} | {reqs} "
              f"| {wall:.2f} s ({' '.join(f'{x:.2f}' for x in sorted(walls))}) | {target_s} "
              f"| {rss:.1f} MiB | {bytes_ok} | {time_ok} | {rss_ok} |{note}")
EOF
