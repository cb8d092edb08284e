#!/usr/bin/env bash
# Checks deploy/hubbub.service with `systemd-analyze verify`. The unit's
# ExecStart (/usr/local/bin/hubbub) is not installed on a build machine, so
# a copy pointing at the built binary is verified; everything else is the
# file as shipped. Usage: deploy/verify-unit.sh [path/to/hubbub]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-${CARGO_TARGET_DIR:-target}/debug/hubbub}"
bin="$(realpath "$bin")"
[ -x "$bin" ] || { echo "verify-unit: no hubbub binary at $bin (cargo build first)" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
sed "s#^ExecStart=/usr/local/bin/hubbub#ExecStart=$bin#" deploy/hubbub.service > "$tmp/hubbub.service"
grep -q "^ExecStart=$bin" "$tmp/hubbub.service" || { echo "verify-unit: ExecStart line changed" >&2; exit 1; }
# verify exits 0 on unknown keys and bad values (it only warns): any
# output at all fails the check.
out="$(systemd-analyze verify "$tmp/hubbub.service" 2>&1)" || { echo "$out" >&2; exit 1; }
if [ -n "$out" ]; then
  echo "$out" >&2
  echo "verify-unit: systemd-analyze verify complained about deploy/hubbub.service" >&2
  exit 1
fi
echo "deploy/hubbub.service: systemd-analyze verify passed"
