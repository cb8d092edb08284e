#!/usr/bin/env bash
# Server CPU per stored DM, in total and for the SQLite writer thread: a fresh
# release server (server.sh, port 9300), `dm --pairs 200 --rate 50 --seconds 30`
# (10,000/s), and /proc/PID/stat plus /proc/PID/task/*/stat read 12 s and 22 s
# into the run; the ticks between them are divided by the messages offered in
# those 10 s. Prints one line with the load average before the run and the
# run's delivery and latency.
# Usage: loadtest/scripts/cpu-per-message.sh NAME [VAR=value ...]
#   VAR=value pairs go to the server's environment (e.g. HUBBUB_SYNC=normal);
#   HUBBUB_BIN picks another build (A/B runs). JSON in /tmp/cpu-NAME.json.
set -euo pipefail
name=${1:?name}; shift
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
rate_total=10000; window=10
pid=$(env "$@" "$root/loadtest/scripts/server.sh" "/tmp/cpu-$name.data" 9300)
trap 'kill "$pid" 2>/dev/null || true' EXIT
load=$(cut -d' ' -f1 /proc/loadavg)
"$target/release/hubbub-loadtest" --target 127.0.0.1:9300 --json dm --pairs 200 --rate 50 --seconds 30 \
  >"/tmp/cpu-$name.json" 2>"/tmp/cpu-$name.err" &
gen=$!
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
writer_ticks() {
  for t in /proc/"$pid"/task/*; do
    if grep -q '^hubbub-sqlite-w' "$t/comm"; then awk '{print $14 + $15}' "$t/stat"; fi
  done
}
sleep 12; t0=$(ticks); w0=$(writer_ticks)
sleep "$window"; t1=$(ticks); w1=$(writer_ticks)
wait "$gen"
hz=$(getconf CLK_TCK); msgs=$((rate_total * window))
us() { echo $(( ($1) * 1000000 / hz / msgs )); }
echo "$name load=$load server_us_per_msg=$(us "t1 - t0") writer_us_per_msg=$(us "w1 - w0")" \
  "$(jq -c '.phase | {delivered, p50: .end_to_end.p50_ms, p99: .end_to_end.p99_ms}' "/tmp/cpu-$name.json")"
