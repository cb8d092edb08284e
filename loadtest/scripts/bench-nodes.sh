#!/usr/bin/env bash
# What one box holds past one process's open-file limit: NODES release nodes
# (one fresh Redis, one data directory, worker ids 1..NODES), each loaded at
# the same time by its own `hubbub-loadtest connect` process with SOCKETS
# token-authenticated sockets. While they run, every node's
# `hubbub_sockets_open` is read once a second; the largest sum is the peak
# number of sockets open on the box at one moment.
# Usage: loadtest/scripts/bench-nodes.sh NAME NODES SOCKETS [extra connect args]
#   e.g. loadtest/scripts/bench-nodes.sh box-100k 5 19800 --seconds 40
# Ports: PORT.. (default 9500..), REDIS_PORT (default 9379). Bounded: each load
# tester is killed after 15 minutes, and the sampler stops with them.
set -euo pipefail
name=${1:?name}; nodes=${2:?nodes}; sockets=${3:?sockets per node}; shift 3
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}  # where cargo put the binaries
out=${OUT:-/tmp/hubbub-bench}; runs=${RUNS:-3}; port=${PORT:-9500}; rport=${REDIS_PORT:-9379}
mkdir -p "$out"
. "$root/loadtest/scripts/redis.sh"

open_sockets() { # the sum of hubbub_sockets_open over every node (server.sh: metrics on port+1000)
  local sum=0 n v
  for n in $(seq 0 $((nodes - 1))); do
    v=$(curl -sf --max-time 2 "http://127.0.0.1:$((port + n + 1000))/metrics" | awk '$1 == "hubbub_sockets_open" {print $2}') || v=0
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

for i in $(seq "$runs"); do
  dir="$out/$name-$i.data"
  start_redis "$rport" "$out/$name-$i.redis.log"; rpid=$REDIS_PID
  spids=()
  for n in $(seq 1 "$nodes"); do
    # Node 1 first: it creates the database and the signing key.
    keep=$([ "$n" -gt 1 ] && echo 1 || echo 0)
    spids+=("$(KEEP_DATA=$keep "$root/loadtest/scripts/server.sh" "$dir" "$((port + n - 1))" \
      --redis "redis://127.0.0.1:$rport" --worker-id "$n")")
  done
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  lpids=()
  for n in $(seq 1 "$nodes"); do
    timeout 900 "$target/release/hubbub-loadtest" --target "127.0.0.1:$((port + n - 1))" \
      --user-prefix "r${i}n${n}" --json connect --sockets "$sockets" --server-pid "${spids[$((n - 1))]}" "$@" \
      >"$out/$name-$i-n$n.json" 2>"$out/$name-$i-n$n.err" &
    lpids+=($!)
  done
  peak=0
  while kill -0 "${lpids[@]}" 2>/dev/null; do
    now=$(open_sockets); [ "$now" -gt "$peak" ] && peak=$now
    sleep 1
  done
  for p in "${lpids[@]}"; do wait "$p" || echo "run $i: a load tester failed (see $out/$name-$i-n*.err)"; done
  kill "${spids[@]}"; wait "${spids[@]}" 2>/dev/null || true
  kill "$rpid"; wait "$rpid" 2>/dev/null || true
  summary=$(jq -s -c 'map(.client // .) | {connected: (map(.connected) | add), held: (map(.held) | add),
      cps_per_node: map(.connections_per_sec | floor), rss_per_socket: map(.rss_per_socket | floor),
      p99_ms: map(.handshake.p99_ms), fail: (map(.failures | add // 0) | add)}' \
    "$out/$name-$i"-n*.json 2>/dev/null || echo '{}')
  echo "$name run $i load [$load] peak_open $peak $summary"
  rm -rf "$dir"
  sleep 2
done
