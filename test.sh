#!/usr/bin/env bash
# The project's test command. In order:
#  1. starts a test Apache Cassandra node (tools/cassandra/cassandra.sh) when
#     Java and Maven are present, and stops it on exit;
#  2. the whole Rust suite once, on SQLite (`cargo test --workspace`; the CQL
#     conformance cases are filtered out here and run in step 3);
#  2b. the instruction-count check (loadtest/scripts/instructions.sh, debug
#     build, small workload) against loadtest/baseline/;
#  3. the CQL pass, with HUBBUB_TEST_SCYLLA=host:port of that node: the store
#     conformance cases `scylla::*` and every test binary that starts servers
#     through tests/common (socket tests and the 3-node cluster tests), so each
#     of them runs on both backends without running the rest twice;
#  2b. the protocol contract (tools/asyncapi): asyncapi.yaml through the
#     official AsyncAPI parser, and every frame step 2's socket tests sent or
#     received (recorded under HUBBUB_RECORD_FRAMES) and every whole-frame
#     example of protocol.md against its schemas;
#  4. the browser end-to-end test (web-tests/, headless Chromium via
#     playwright-core), on SQLite and then on the Cassandra node; this
#     includes web-tests/proxy.test.js: two nodes behind nginx with TLS
#     (deploy/nginx/hubbub.conf), wss:// and the web client through it;
#  5. the client SDK's tests (clients/js/, node --test against the binary and
#     redis-server), on SQLite and then on the Cassandra node;
#  4b/5b. the browser chat test (web-tests/chat.test.js) and the SDK tests once
#     more through nginx with TLS (HUBBUB_VIA_NGINX=1: each server gets an
#     nginx running deploy/nginx/hubbub.conf in front, clients use wss://
#     and trust the test's certificate), on SQLite;
#  6. deploy/hubbub.service checked with systemd-analyze verify.
# A failing test phase does not stop the run: every phase runs, the summary
# names the failed ones, and the exit status is 1.
# Under CI=true a missing Java/Maven/chromium or a Cassandra that fails to
# start fails the run; elsewhere the missing part is skipped loudly.
# HUBBUB_TEST_SCYLLA set by the caller: that node is used instead of starting
# one (e.g. a real ScyllaDB, see README).
set -euo pipefail
cd "$(dirname "$0")"

loud() { echo "!!!!! $* !!!!!" >&2; }
in_ci() { [ "${CI:-}" = "true" ]; }

# Phase timing, kept in the CI log: `phase NAME CMD...` runs CMD and prints
# its wall time and the CPU time (user, sys) of the processes it waited for
# (the Cassandra node's own CPU is not among them); the summary of every
# phase run is printed again on exit, pass or fail.
PHASES=()
phase() {
  local name=$1 t0=$SECONDS rc=0
  shift
  local TIMEFORMAT="==> phase $name: %R s wall, %U s user, %S s sys"
  time "$@" || rc=$?
  PHASES+=("$name: $((SECONDS - t0)) s wall$([ "$rc" = 0 ] || echo ", FAILED ($rc)")")
  return "$rc"
}
# `check NAME CMD...`: a test phase. A failure is recorded and the run goes
# on, so one CI run shows every failing phase; test.sh exits 1 at the end.
FAILED=()
check() {
  phase "$@" || FAILED+=("$1")
}
finish() {
  if [ "${#FAILED[@]}" -gt 0 ]; then
    echo "==> FAILED phases: ${FAILED[*]}" >&2
    exit 1
  fi
  exit 0
}
phase_summary() {
  [ "${#PHASES[@]}" -gt 0 ] || return 0
  echo "==> test.sh phases (total $SECONDS s wall):" >&2
  printf '==>   %s\n' "${PHASES[@]}" >&2
}

CASSANDRA_DIR=""
stop_cassandra() {
  if [ -n "$CASSANDRA_DIR" ]; then
    tools/cassandra/cassandra.sh stop "$CASSANDRA_DIR" || true
    rm -rf "$CASSANDRA_DIR"
  fi
}
FRAMES="$(mktemp -d "${TMPDIR:-/tmp}/hubbub-frames.XXXXXX")"
trap 'phase_summary; stop_cassandra; rm -rf "$FRAMES"' EXIT

CQL="${HUBBUB_TEST_SCYLLA:-}"
unset HUBBUB_TEST_SCYLLA
if [ -z "$CQL" ]; then
  if command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then
    CASSANDRA_DIR="$(mktemp -d "${TMPDIR:-/tmp}/hubbub-cassandra.XXXXXX")"
    echo "starting the test Cassandra node in $CASSANDRA_DIR ..." >&2
    start_node() { CQL="$(tools/cassandra/cassandra.sh start "$CASSANDRA_DIR")"; }
    if ! phase cassandra-start start_node; then
      CQL=""
      if in_ci; then
        echo "CI=true: the test Cassandra node failed to start" >&2
        exit 1
      fi
      loud "the test Cassandra node failed to start: SKIPPING every CQL test"
    else
      echo "test Cassandra node at $CQL" >&2
    fi
  elif in_ci; then
    echo "CI=true: java (JDK 17) and mvn are required for the CQL tests" >&2
    exit 1
  else
    loud "java/mvn not found: SKIPPING every CQL test (install openjdk-17-jdk-headless and maven)"
  fi
fi

# 2. Everything on SQLite.
# A clean clone gains nothing from incremental caches (they doubled target/
# locally); CI builds without them. The free space of target/'s disk goes
# into the log before and after the build: a full disk shows up as a linker
# killed by SIGBUS, which says nothing about the cause on its own.
if in_ci; then export CARGO_INCREMENTAL=0; fi
disk_free() { mkdir -p target && df -h target | sed -n 2p | awk '{print "==> disk: " $4 " free of " $2 " under target/"}' >&2; }
disk_free
phase cargo-build cargo test --workspace --locked --no-run || { disk_free; exit 1; }
disk_free
HUBBUB_RECORD_FRAMES="$FRAMES/rust" check rust-sqlite cargo test --workspace --locked --no-fail-fast -- --skip scylla::

# 2b. The protocol contract, against what step 2 sent and received.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  check protocol-check bash -c 'cd tools/asyncapi && npm ci --no-audit --no-fund && node --test && node cli.js --examples ../../protocol.md --frames "$0"' "$FRAMES/rust"
elif in_ci; then
  echo "CI=true: node and npm are required for the protocol check (tools/asyncapi)" >&2
  exit 1
else
  loud "SKIPPING the protocol check (tools/asyncapi): node/npm not found"
fi

# 6 (cheap, needs the binary step 2 built). The systemd unit.
if command -v systemd-analyze >/dev/null 2>&1; then
  check systemd-unit deploy/verify-unit.sh
elif in_ci; then
  echo "CI=true: systemd-analyze is required to check deploy/hubbub.service" >&2
  exit 1
else
  loud "SKIPPING the systemd unit check: systemd-analyze not found (apt-get install systemd)"
fi

# 2c. Instructions per stored message and per delivered event against the
# committed baseline (BENCHMARKS.md, "Instructions per event"): the debug
# build the suite just made, a small fixed workload, about a minute.
if command -v valgrind >/dev/null 2>&1; then
  check instructions bash -c 'cargo build --workspace --locked && PROFILE=debug WORKLOAD=ci loadtest/scripts/instructions.sh --check'
elif in_ci; then
  echo "CI=true: valgrind is required for the instruction-count check" >&2
  exit 1
else
  loud "valgrind not found: SKIPPING the instruction-count check (apt-get install valgrind)"
fi

# 3. The CQL pass.
if [ -n "$CQL" ]; then
  gated=(--test store_conformance)
  for f in $(grep -l -E 'TestServer|Cluster::start|Node::start' tests/*.rs); do
    gated+=(--test "$(basename "$f" .rs)")
  done
  echo "CQL pass on $CQL: ${gated[*]}" >&2
  # --workspace: the same feature set as step 2, so nothing is rebuilt.
  HUBBUB_TEST_SCYLLA="$CQL" check rust-cql cargo test --workspace --locked --no-fail-fast "${gated[@]}" -- --skip sqlite::
fi

# 4. The browser test.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if in_ci; then
    echo "node and npm are required for the browser test" >&2
    exit 1
  fi
  loud "SKIPPING the browser test: node/npm not found"
  finish
fi
phase npm-ci bash -c 'cd web-tests && npm ci --no-audit --no-fund'
check browser-sqlite bash -c 'cd web-tests && node --test'
if [ -n "$CQL" ]; then
  echo "browser test on CQL ($CQL)" >&2
  HUBBUB_TEST_SCYLLA="$CQL" check browser-cql bash -c 'cd web-tests && node --test'
fi
# 4b. The browser chat test through nginx with TLS (SQLite; 41-74 s on a loaded 2-core box).
NGINX_BIN="$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)"
# via_nginx PHASE COMMAND...: runs a check with HUBBUB_VIA_NGINX=1; without
# nginx it fails the phase under CI and skips it loudly elsewhere.
via_nginx() {
  local name=$1; shift
  if [ -n "$NGINX_BIN" ]; then
    HUBBUB_VIA_NGINX=1 check "$name" "$@"
  elif in_ci; then
    echo "CI=true: nginx is required for $name (apt-get install -y nginx-light)" >&2
    FAILED+=("$name")
  else
    loud "SKIPPING $name: nginx not found (apt-get install -y nginx-light)"
  fi
}
via_nginx browser-nginx bash -c 'cd web-tests && node --test chat.test.js'

# 5. The client SDK (clients/js): the binary built above, redis-server.
HUBBUB_RECORD_FRAMES="$FRAMES/sdk" check sdk-sqlite bash -c 'cd clients/js && npm ci --no-audit --no-fund && npm test'
# The SDK's frames against the same schemas.
check sdk-protocol-check bash -c 'cd tools/asyncapi && node cli.js --frames "$0"' "$FRAMES/sdk"
if [ -n "$CQL" ]; then
  echo "SDK tests on CQL ($CQL)" >&2
  HUBBUB_TEST_SCYLLA="$CQL" check sdk-cql bash -c 'cd clients/js && npm test'
fi
# 5b. The SDK tests through nginx with TLS (SQLite; 22-31 s on a loaded 2-core box).
via_nginx sdk-nginx bash -c 'cd clients/js && npm test'

finish
