#!/usr/bin/env bash
# Login latency under a registration flood (issue 12, point 3), at the
# default bcrypt cost (12), against a fresh release server per setting.
# Usage: loadtest/scripts/login-flood.sh OUT_DIR [login_flood flags...]
# HUBBUB_BIN / LOGIN_FLOOD_BIN override the binaries (default: target/release).
# Settings:
#   unbounded  the pool and registration limits lifted (512 hashes at once, as
#              before the pool: one spawn_blocking per hash, no admission)
#   defaults   everything at its default (registration limit 10/hour/address)
#   pool       registration limits lifted: only the bcrypt pool protects
#   pool16    as pool, the flood spread over 16 source addresses
set -euo pipefail
out=${1:?out dir}; shift
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}  # where cargo put the binaries
bin=${HUBBUB_BIN:-$target/release/hubbub}
flood=${LOGIN_FLOOD_BIN:-$target/release/login_flood}
mkdir -p "$out"
lifted_reg="--register-per-addr 1000000 --register-global-per-min 1000000"
run() {
  local name=$1 sources=$2; shift 2
  local dir="$out/$name.data" port=9170
  rm -rf "$dir"; mkdir -p "$dir"
  HUBBUB_LOG=warn "$bin" --data-dir "$dir" --listen "127.0.0.1:$port" --metrics-listen off "$@" >"$out/$name.server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  echo "== $name (server flags: $*; flood from $sources address(es))" | tee "$out/$name.txt"
  timeout 600 "$flood" --target "127.0.0.1:$port" --prefix "lf_$name" --flood-sources "$sources" \
    "${FLOOD_ARGS[@]}" | tee -a "$out/$name.txt" || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}
FLOOD_ARGS=("$@")
# shellcheck disable=SC2086
run unbounded 1 --bcrypt-threads 512 --bcrypt-queue 100000 --bcrypt-per-key 100000 $lifted_reg
run defaults 1
# shellcheck disable=SC2086
run pool 1 $lifted_reg
# shellcheck disable=SC2086
run pool16 16 $lifted_reg
