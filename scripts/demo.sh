#!/usr/bin/env bash
# `make demo`: Li2 Lab end to end on this machine, no Docker, no Redis, no PostgreSQL.
#
# 1. a throwaway SQLite database under var/demo/ (removed and made anew on every run),
# 2. a user `demo` and its API token (`li2lab users create`),
# 3. the service in embedded mode (`li2lab serve`: API + SQLite broker + one local worker),
# 4. the dashboard's address and the token to sign in with, so the run can be watched in a browser
#    while it trains,
# 5. examples/quickstart.py submits a small Z_23 experiment through the Python SDK, waits for it,
#    and prints its stage timeline (lazy -> independent -> interactive) and the paths of its plots.
# The server is stopped on every exit path (with DEMO_KEEP=1, only after Ctrl-C, so the dashboard can
# be looked at). Needs the venv that `make install` builds.
#
# Settings: DEMO_PORT (8765), DEMO_OUT (demo-out), DEMO_READY_S (how long to wait for /readyz, 120),
# DEMO_DIR (var/demo: the throwaway database, broker and server log), DEMO_KEEP (1: keep serving).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
PORT=${DEMO_PORT:-8765}
OUT=${DEMO_OUT:-demo-out}
READY_S=${DEMO_READY_S:-120}
DEMO_DIR=$(mkdir -p "${DEMO_DIR:-$ROOT/var/demo}" && cd "${DEMO_DIR:-$ROOT/var/demo}" && pwd)
LOG=$DEMO_DIR/server.log

if [[ ! -x $BIN/li2lab ]]; then
  echo "demo: $BIN/li2lab not found; run 'make demo' (it installs first) or 'make install'" >&2
  exit 1
fi

if "$BIN/python" -c "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$PORT" 2>/dev/null; then
  echo "demo: port $PORT is already in use; stop what runs there or set DEMO_PORT" >&2
  exit 1
fi

# Start from nothing: remove only what an earlier demo run left there.
rm -rf "$DEMO_DIR"/li2.sqlite* "$DEMO_DIR/var" "$DEMO_DIR/artifacts" "$LOG"
# Embedded mode: no LI2_BROKER_URL. Everything the service writes lives under var/demo/; the server
# runs with var/demo as its working directory, so its embedded broker file lands there too.
unset LI2_BROKER_URL
export LI2_DATABASE_URL="sqlite:///$DEMO_DIR/li2.sqlite"
export LI2_ARTIFACT_DIR="$DEMO_DIR/artifacts"

echo "demo: creating user 'demo' in $DEMO_DIR/li2.sqlite"
TOKEN=$("$BIN/li2lab" users create demo)

echo "demo: starting the service on http://127.0.0.1:$PORT (log: $LOG)"
(cd "$DEMO_DIR" && exec "$BIN/li2lab" serve --host 127.0.0.1 --port "$PORT") >"$LOG" 2>&1 &
SERVER_PID=$!

stop_server() {
  # The server owns its embedded worker; SIGTERM lets it stop both. Escalate if it lingers.
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 20); do
      kill -0 "$SERVER_PID" 2>/dev/null || return 0
      sleep 0.5
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
}
trap stop_server EXIT
trap 'exit 130' INT TERM

if ! "$BIN/python" - "http://127.0.0.1:$PORT/readyz" "$READY_S" "$SERVER_PID" <<'PY'
"""Poll /readyz until it answers 200, the server process dies, or the time is up."""
import os, sys, time, urllib.request

url, limit, pid = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + limit
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("demo: the server exited during start-up")
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.5)
sys.exit(f"demo: {url} not ready after {limit:.0f} s")
PY
then
  echo "demo: server log (last 40 lines):" >&2
  tail -n 40 "$LOG" >&2 || true
  exit 1
fi

echo "demo: dashboard: http://127.0.0.1:$PORT/  (sign in with the token of user 'demo': $TOKEN)"
echo "demo: API docs:  http://127.0.0.1:$PORT/api/v1/docs"
echo "demo: service ready; running examples/quickstart.py through the SDK"
if ! LI2_URL="http://127.0.0.1:$PORT" LI2_TOKEN="$TOKEN" "$BIN/python" examples/quickstart.py --out "$OUT"; then
  echo "demo: the example failed; server log (last 40 lines):" >&2
  tail -n 40 "$LOG" >&2 || true
  exit 1
fi

if [[ ${DEMO_KEEP:-0} == 1 ]]; then
  echo "demo: the dashboard stays up at http://127.0.0.1:$PORT/ until Ctrl-C"
  wait "$SERVER_PID" || true
fi
