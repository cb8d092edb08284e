#!/usr/bin/env bash
# Runs one benchmark figure RUNS times (default 3), each against a fresh
# server, and prints one line per run with the 1-minute load average taken
# just before it. JSON results are kept in $OUT (default /tmp/hubbub-bench).
# Usage: loadtest/scripts/bench.sh NAME -- LOADTEST ARGS...
#   e.g. loadtest/scripts/bench.sh connect-10k -- connect --sockets 10000 --seconds 10
# `--server-pid` is added for `connect`. Bounded: every loadtest run stops by itself,
# and each is also killed after 15 minutes.
# CQL=host:port runs the server on that CQL node (e.g. the test Cassandra of
# tools/cassandra/cassandra.sh), each run in a fresh keyspace it creates at start.
set -euo pipefail
name=${1:?name}; shift; [ "${1:-}" = "--" ] && shift
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}  # where cargo put the binaries
out=${OUT:-/tmp/hubbub-bench}; runs=${RUNS:-3}; port=${PORT:-9300}
mkdir -p "$out"
for i in $(seq "$runs"); do
  dir="$out/$name-$i.data"
  cql=()
  [ -n "${CQL:-}" ] && cql=(--scylla "$CQL" --scylla-keyspace "bench_${name//[^a-zA-Z0-9]/_}_${i}_$$" --scylla-migrate)
  pid=$("$root/loadtest/scripts/server.sh" "$dir" "$port" "${cql[@]}")
  extra=()
  [ "$1" = "connect" ] && extra=(--server-pid "$pid")
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  timeout 900 "$target/release/hubbub-loadtest" --target "127.0.0.1:$port" --json --metrics "$@" "${extra[@]}" \
    >"$out/$name-$i.json" 2>"$out/$name-$i.err" || echo "run $i failed: $(tail -1 "$out/$name-$i.err")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  summary=$(jq -c '.client | if .scenario == "connect" then
      {connected, cps: (.connections_per_sec|floor), rss_per_socket: (.rss_per_socket|floor), fail: (.failures|add // 0), p99_ms: .handshake.p99_ms}
    elif .scenario == "dm" then
      {sent: .phase.sent, delivered: .phase.delivered, per_s: (.phase.delivered_per_sec|floor), p50: .phase.end_to_end.p50_ms,
       p90: .phase.end_to_end.p90_ms, p99: .phase.end_to_end.p99_ms, p999: .phase.end_to_end.p999_ms, max: .phase.end_to_end.max_ms,
       ack_p99: .phase.ack.p99_ms, typing_sent: .phase.typing_sent, typing_ok: .phase.typing_acked,
       errors: (.phase.errors|add // 0)}
    elif .scenario == "groups" then
      {groups, members, sent: .phase.sent, due: .phase.expected, delivered: .phase.delivered, per_s: (.phase.delivered_per_sec|floor),
       p50: .phase.end_to_end.p50_ms, p99: .phase.end_to_end.p99_ms, max: .phase.end_to_end.max_ms, ack_p99: .phase.ack.p99_ms,
       errors: (.phase.errors|add // 0)}
    elif .scenario == "fanout" then
      {online: .followers_online, posts, expected, delivered, p50: .delivery.p50_ms, p99: .delivery.p99_ms, max: .delivery.max_ms,
       last_p50: .last_follower_p50_ms, last_max: .last_follower_max_ms, ack_p99: .ack.p99_ms,
       errors: (.errors|add // 0), setup_fail: (.setup_failures|add // 0)}
    else {highest: .highest_passing_rate, steps: [.steps[] | {r: .phase.offered_rate, p99: .phase.end_to_end.p99_ms, ok: .pass}]} end' \
    "$out/$name-$i.json" 2>/dev/null || echo '{}')
  echo "$name run $i load [$load] ${cql[3]:-} $summary"
  rm -rf "$dir"
  sleep 2
done
