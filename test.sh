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
#  4. the browser end-to-end test (web-tests/, headless Chromium via
#     playwright-core), on SQLite and then on the Cassandra node.
# Under CI=true a missing Java/Maven/chromium or a Cassandra that fails to
# start fails the run; elsewhere the missing part is skipped loudly.
# HUBBUB_TEST_SCYLLA set by the caller: that node is used instead of starting
# one (e.g. a real ScyllaDB, see README).
set -euo pipefail
cd "$(dirname "$0")"

loud() { echo "!!!!! $* !!!!!" >&2; }
in_ci() { [ "${CI:-}" = "true" ]; }

CASSANDRA_DIR=""
stop_cassandra() {
  if [ -n "$CASSANDRA_DIR" ]; then
    tools/cassandra/cassandra.sh stop "$CASSANDRA_DIR" || true
    rm -rf "$CASSANDRA_DIR"
  fi
}
trap stop_cassandra EXIT

CQL="${HUBBUB_TEST_SCYLLA:-}"
unset HUBBUB_TEST_SCYLLA
if [ -z "$CQL" ]; then
  if command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then
    CASSANDRA_DIR="$(mktemp -d "${TMPDIR:-/tmp}/hubbub-cassandra.XXXXXX")"
    echo "starting the test Cassandra node in $CASSANDRA_DIR ..." >&2
    if ! CQL="$(tools/cassandra/cassandra.sh start "$CASSANDRA_DIR")"; then
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
cargo test --workspace --locked -- --skip scylla::

# 2b. Instructions per stored message and per delivered event against the
# committed baseline (BENCHMARKS.md, "Instructions per event"): the debug
# build the suite just made, a small fixed workload, about a minute.
if command -v valgrind >/dev/null 2>&1; then
  cargo build --workspace --locked
  PROFILE=debug WORKLOAD=ci loadtest/scripts/instructions.sh --check
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
  HUBBUB_TEST_SCYLLA="$CQL" cargo test --workspace --locked "${gated[@]}" -- --skip sqlite::
fi

# 4. The browser test.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if in_ci; then
    echo "node and npm are required for the browser test" >&2
    exit 1
  fi
  loud "SKIPPING the browser test: node/npm not found"
  exit 0
fi
(cd web-tests && npm ci --no-audit --no-fund && node --test)
if [ -n "$CQL" ]; then
  echo "browser test on CQL ($CQL)" >&2
  (cd web-tests && HUBBUB_TEST_SCYLLA="$CQL" node --test)
fi
