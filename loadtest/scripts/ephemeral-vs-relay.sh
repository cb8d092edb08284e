#!/usr/bin/env bash
# Ephemeral events on one hubbub node against a bare relay (issue 18:
# "within 2x of the bare relay's delivery rate on the same box"). Runs
# ROUNDS rounds of two ramps, alternating: `hubbub-relay` (no storage, no
# auth, no replies) and a fresh release hubbub (loadtest/scripts/server.sh),
# both loaded by `hubbub-loadtest ephemeral --ramp` with the same pairs and
# rules (100% delivered, p99 <= 50 ms), and prints one summary line a run.
# Usage: loadtest/scripts/ephemeral-vs-relay.sh
#   ROUNDS (3), PAIRS (100), STEP_SECONDS (5), HUBBUB_BIN (another hubbub build),
#   RELAY_START/RELAY_STEP (50000/25000), HUBBUB_START/HUBBUB_STEP (20000/10000)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
rounds=${ROUNDS:-3}; pairs=${PAIRS:-100}; ss=${STEP_SECONDS:-5}
out=${OUT:-/tmp/hubbub-ephemeral}; mkdir -p "$out"
run() { # NAME PORT START STEP [--relay]
  local name=$1 port=$2 start=$3 step=$4; shift 4
  local load; load=$(cut -d' ' -f1-3 /proc/loadavg)
  timeout 900 "$target/release/hubbub-loadtest" --target "127.0.0.1:$port" --json ephemeral "$@" --pairs "$pairs" \
    --ramp --start "$start" --step "$step" --step-seconds "$ss" --p99-ms 50 --drain 3 >"$out/$name.json" 2>"$out/$name.err" \
    || echo "$name failed: $(tail -1 "$out/$name.err")"
  echo "$name load [$load] $(jq -c '{highest: .highest_passing_rate,
      steps: [.steps[] | "\(.phase.offered_rate|floor):p99 \(.phase.end_to_end.p99_ms):\(.phase.delivered)/\(.phase.expected)"]}' \
      "$out/$name.json" 2>/dev/null || echo '{}')"
}
for i in $(seq "$rounds"); do
  "$target/release/hubbub-relay" --listen 127.0.0.1:9400 >"$out/relay-$i.log" 2>&1 &
  relay=$!; sleep 0.5
  run "relay-$i" 9400 "${RELAY_START:-50000}" "${RELAY_STEP:-25000}" --relay
  kill "$relay"; wait "$relay" 2>/dev/null || true
  pid=$("$root/loadtest/scripts/server.sh" "$out/hubbub-$i.data" 9300)
  run "hubbub-$i" 9300 "${HUBBUB_START:-20000}" "${HUBBUB_STEP:-10000}"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$out/hubbub-$i.data"
  sleep 2
done
