#!/usr/bin/env bash
# The cost of a submit in Redis: for each kaggle-solver binary given, a fresh redis-server (AOF
# every second), `serve --workers 0`, `stress --submit-only` (50 clients, 5000 jobs), then
# Redis's own time per script call (INFO commandstats: with no workers, every EVALSHA is an
# enqueue). Give two builds (e.g. before and after a change of enqueue.lua) to compare them
# in one run; ROUNDS (default 3) alternates them.
#
#   tools/bench/enqueue.sh /tmp/ks-before target/debug/kaggle-solver
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 BIN [BIN...]" >&2; exit 2; }
ROUNDS=${ROUNDS:-3}
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

one() {
  local bin=$1 rp ap data
  rp=$(port); ap=$(port); data=$(mktemp -d)
  redis-server --port "$rp" --bind 127.0.0.1 --save "" --appendonly yes \
    --appendfsync everysec --dir "$data" >/dev/null &
  PIDS=($!)
  for _ in $(seq 100); do redis-cli -p "$rp" ping >/dev/null 2>&1 && break; sleep 0.05; done
  KS_MAX_QUEUED=1000000 KS_LOG=warn "$bin" serve --bind "127.0.0.1:$ap" \
    --redis "redis://127.0.0.1:$rp" --workers 0 >/dev/null 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$ap/healthz" && break; sleep 0.1; done
  local stress usec
  stress=$("$bin" stress --url "http://127.0.0.1:$ap" --clients 50 --jobs 5000 --submit-only 2>/dev/null | tail -1)
  usec=$(redis-cli -p "$rp" info commandstats | tr -d '\r' | sed -n 's/^cmdstat_evalsha:.*usec_per_call=\([0-9.]*\).*/\1/p')
  printf '%s\t%s\t%s\t%s\t%s\n' "$bin" "$usec" \
    "$(jq -r '.submits_per_s | floor' <<<"$stress")" \
    "$(jq -r '.submit_p50_ms * 10 | floor / 10' <<<"$stress")" \
    "$(jq -r '.submit_p99_ms * 10 | floor / 10' <<<"$stress")"
  cleanup; PIDS=(); rm -rf "$data"
}

printf 'binary\tRedis µs per enqueue\tsubmits/s\tp50 ms\tp99 ms\n'
for _ in $(seq "$ROUNDS"); do
  for bin in "$@"; do one "$bin"; done
done
