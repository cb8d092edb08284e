#!/usr/bin/env bash
# Like bench.sh, for two nodes sharing one Redis and one data directory:
# each run starts a fresh redis-server (loopback, no persistence) and two
# fresh release nodes (worker ids 1 and 2), runs the load tester with
# --target on node A and --target-b on node B, and stops all three.
# Usage: loadtest/scripts/bench-2nodes.sh NAME -- LOADTEST ARGS...
#   e.g. loadtest/scripts/bench-2nodes.sh dm2-100x20 -- dm --pairs 100 --rate 20 --seconds 30
# Ports: PORT (node A, default 9310), PORT+1 (node B), REDIS_PORT (default 9379).
set -euo pipefail
name=${1:?name}; shift; [ "${1:-}" = "--" ] && shift
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}  # where cargo put the binaries
out=${OUT:-/tmp/hubbub-bench}; runs=${RUNS:-3}; port=${PORT:-9310}; rport=${REDIS_PORT:-9379}
mkdir -p "$out"
. "$root/loadtest/scripts/redis.sh"
for i in $(seq "$runs"); do
  dir="$out/$name-$i.data"
  start_redis "$rport" "$out/$name-$i.redis.log"; rpid=$REDIS_PID
  redis="redis://127.0.0.1:$rport"
  # Node A first (it creates the database and the signing key), then B on the same directory.
  apid=$("$root/loadtest/scripts/server.sh" "$dir" "$port" --redis "$redis" --worker-id 1)
  bpid=$(KEEP_DATA=1 "$root/loadtest/scripts/server.sh" "$dir" "$((port + 1))" --redis "$redis" --worker-id 2)
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  timeout 900 "$target/release/hubbub-loadtest" --target "127.0.0.1:$port" --target-b "127.0.0.1:$((port + 1))" \
    --json --metrics "$@" >"$out/$name-$i.json" 2>"$out/$name-$i.err" || echo "run $i failed: $(tail -1 "$out/$name-$i.err")"
  kill "$apid" "$bpid"; wait "$apid" "$bpid" 2>/dev/null || true
  kill "$rpid"; wait "$rpid" 2>/dev/null || true
  summary=$(jq -c '.client | if .scenario == "dm" then
      {sent: .phase.sent, delivered: .phase.delivered, per_s: (.phase.delivered_per_sec|floor), p50: .phase.end_to_end.p50_ms,
       p90: .phase.end_to_end.p90_ms, p99: .phase.end_to_end.p99_ms, p999: .phase.end_to_end.p999_ms, max: .phase.end_to_end.max_ms,
       ack_p99: .phase.ack.p99_ms, errors: (.phase.errors|add // 0)}
    elif .scenario == "groups" then
      {groups, members, sent: .phase.sent, due: .phase.expected, delivered: .phase.delivered, per_s: (.phase.delivered_per_sec|floor),
       p50: .phase.end_to_end.p50_ms, p99: .phase.end_to_end.p99_ms, max: .phase.end_to_end.max_ms, ack_p99: .phase.ack.p99_ms,
       errors: (.phase.errors|add // 0)}
    else {highest: .highest_passing_rate, steps: [.steps[] | {r: .phase.offered_rate, p99: .phase.end_to_end.p99_ms, ok: .pass}]} end' \
    "$out/$name-$i.json" 2>/dev/null || echo '{}')
  echo "$name run $i load [$load] $summary"
  rm -rf "$dir"
  sleep 2
done
