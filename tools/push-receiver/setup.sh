#!/usr/bin/env bash
# Creates the venv the Web Push test receiver runs in (tools/push-receiver/.venv),
# with http-ece and cryptography from PyPI. Idempotent. Needs python3-venv
# (Debian: apt-get install python3-venv).
set -euo pipefail
cd "$(dirname "$0")"
# Tests call this concurrently: one creates the venv, the others wait for it.
exec 9>.venv.lock
flock 9
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import http_ece, cryptography' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
fi
echo "$(pwd)/.venv/bin/python"
