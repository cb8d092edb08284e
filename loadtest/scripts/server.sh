#!/usr/bin/env bash
# Starts a fresh release hubbub for a load run, in the background, and prints
# its pid. Usage: loadtest/scripts/server.sh DATA_DIR [PORT] [extra hubbub flags]
# The data directory is wiped first unless KEEP_DATA=1 (a second node on the same
# directory); HUBBUB_BIN overrides the binary (A/B runs).
# Its /metrics listens on 127.0.0.1:PORT+1000 (hubbub-loadtest --metrics
# looks there by default).
# Flags for load runs (see BENCHMARKS.md):
#   --bcrypt-cost 4              setup registers thousands of users; the measured
#                                paths (token reconnect, message.send) do no bcrypt
#   --rate-per-sec/--rate-burst  one load-test socket sends far above 50 requests/s
#   --login-failures-*           never hit by a correct run; raised so a retried
#                                setup cannot be throttled
#   --register-*, --bcrypt-queue/--bcrypt-per-key, --user-writes-*, --max-unauth-per-addr
#                                setup registers thousands of users from 16 loopback
#                                addresses, and one load-test user sends far above
#                                20 writes/s; these limits are measured by login_flood
#                                (BENCHMARKS.md), not by these scenarios
set -euo pipefail
dir=${1:?data dir}; port=${2:-9100}; shift $(( $# >= 2 ? 2 : 1 ))
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}  # where cargo put the binaries
[ "${KEEP_DATA:-}" = 1 ] || rm -rf "$dir"; mkdir -p "$dir"
HUBBUB_LOG=${HUBBUB_LOG:-warn} nohup "${HUBBUB_BIN:-$target/release/hubbub}" --data-dir "$dir" --listen "127.0.0.1:$port" \
  --metrics-listen "127.0.0.1:$((port + 1000))" --bcrypt-cost 4 --rate-per-sec 100000 --rate-burst 100000 \
  --login-failures-per-user 1000000 --login-failures-per-addr 1000000 --login-failures-per-user-addr 1000000 \
  --register-per-addr 1000000 --register-global-per-min 1000000 --bcrypt-queue 100000 --bcrypt-per-key 100000 \
  --user-writes-per-sec 1000000 --user-writes-burst 1000000 --max-unauth-per-addr 1000000 "$@" >"$dir.$port.log" 2>&1 &
pid=$!
# 5 s, or 3 minutes with --scylla (creating a keyspace takes a while).
tries=50; case " $* " in *" --scylla "*) tries=1800 ;; esac
for _ in $(seq "$tries"); do
  if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; then echo "$pid"; exit 0; fi
  sleep 0.1
done
echo "server did not start; see $dir.$port.log" >&2; exit 1
