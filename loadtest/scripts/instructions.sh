#!/usr/bin/env bash
# Instructions per stored message and per delivered event: the server alone
# under `valgrind --tool=callgrind`, the load generator (`hubbub-loadtest
# instr`, a fixed closed-loop workload) outside it. Instrumentation is off
# during setup (registrations, sockets, follows); each measured phase (dm,
# typing, fanout) is bracketed by `callgrind_control --zero` / `--dump`, so
# only the server's work for that phase is counted (all its threads).
#
# Usage: loadtest/scripts/instructions.sh [--check] [--update] [--top N]
#   PROFILE=release|debug  which build of hubbub and hubbub-loadtest (default
#                          release); instruction counts differ by profile, so
#                          each has its own baseline
#   WORKLOAD=full|ci       full: 100 pairs, 10,000 DMs, 2,000 typing events,
#                          one post to 1,000 followers (BENCHMARKS.md);
#                          ci: 20 pairs, 500 DMs, 200 typing, 100 followers
#   PORT (default: a free port the OS picks), OUT (default /tmp/hubbub-instr-$PROFILE-$WORKLOAD)
#   HUBBUB_BIN             another hubbub binary of the same profile (an A/B
#                          run against an earlier build); default target/$PROFILE/hubbub
# --check   compare with loadtest/baseline/instructions-$PROFILE-$WORKLOAD.json:
#           exit 1 when a figure grew by more than its margin (the baseline's
#           per-phase "margin", else MARGIN, default 0.05 = 5%; BENCHMARKS.md says why)
# --update  write the figures as the new baseline
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
profile=${PROFILE:-release}; workload=${WORKLOAD:-full}
# A free port below the kernel's ephemeral range: a port from bind(0) could
# be taken by an outgoing connection before the server (slow to start under
# valgrind) binds it.
port=${PORT:-$(python3 -c '
import os, random, socket
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0]) if os.path.exists("/proc/sys/net/ipv4/ip_local_port_range") else 32768
for p in random.sample(range(15000, max(lo, 15100)), min(200, max(lo, 15100) - 15000)):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        s.close()
')}
out=${OUT:-/tmp/hubbub-instr-$profile-$workload}; margin=${MARGIN:-0.05}
check=no; update=no; top=15
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check=yes ;;
    --update) update=yes ;;
    --top) top=$2; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
case "$workload" in
  full) flags=(--pairs 100 --messages 10000 --typing 2000 --followers 1000) ;;
  ci) flags=(--pairs 20 --messages 500 --typing 200 --followers 100) ;;
  *) echo "WORKLOAD must be full or ci" >&2; exit 2 ;;
esac
bin="$root/target/$profile"
server_bin=${HUBBUB_BIN:-$bin/hubbub}
baseline="$root/loadtest/baseline/instructions-$profile-$workload.json"
for tool in valgrind callgrind_control callgrind_annotate python3 curl; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 2; }
done
[ -x "$server_bin" ] && [ -x "$bin/hubbub-loadtest" ] || {
  echo "build first: cargo build --workspace $([ "$profile" = release ] && echo --release)" >&2; exit 2; }

rm -rf "$out"; mkdir -p "$out"
# --ping-interval 0: the closed-loop generator does not read the sockets of
# a phase that is not running (the fanout author and followers wait through
# dm and typing, 75 s and more under valgrind), so server pings would go
# unanswered and close them (4004) before their phase; and ping frames are
# not part of the measured work.
HUBBUB_LOG=warn valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/cg.out" \
  "$server_bin" --data-dir "$out/data" --listen "127.0.0.1:$port" \
  --bcrypt-cost 4 --rate-per-sec 100000 --rate-burst 100000 \
  --register-per-addr 1000000 --register-global-per-min 1000000 --bcrypt-queue 100000 --bcrypt-per-key 100000 \
  --user-writes-per-sec 1000000 --user-writes-burst 1000000 --max-unauth-per-addr 1000000 \
  --ping-interval 0 --metrics-listen off \
  >"$out/server.log" 2>&1 &
pid=$!
stop() { kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 600); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$out/server.log" >&2; exit 1; }
  sleep 0.1
done
load=$(cut -d' ' -f1 /proc/loadavg)
"$bin/hubbub-loadtest" --target "127.0.0.1:$port" --json --timeout 60 --max-seconds 1800 --concurrency 16 \
  instr "${flags[@]}" --callgrind-pid "$pid" >"$out/loadtest.json"
stop; trap - EXIT

python3 - "$out" "$profile" "$workload" "$load" "$top" <<'PY'
import glob, json, os, re, subprocess, sys
out, profile, workload, load, top = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
report = json.load(open(os.path.join(out, "loadtest.json")))
phases = report["phases"]
dumps = {}
for f in glob.glob(os.path.join(out, "cg.out.*")):
    text = open(f, errors="replace").read()
    name = re.search(r"^desc: Trigger: (.*)$", text, re.M).group(1).strip().split()[-1]
    total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    dumps[name] = (f, int(total.group(1)) if total else 0)
figures = {}
for p in phases:
    name = p["name"]
    f, ir = dumps.get(name, (None, 0))
    if f is None:
        sys.exit(f"no callgrind dump for phase {name}: {sorted(dumps)}")
    unit = p["stored"] if name == "dm" else p["events"]
    figures[name] = {"instructions": ir, "requests": p["requests"], "stored": p["stored"],
                     "events": p["events"], "per_unit": round(ir / max(unit, 1))}
    ann = subprocess.run(["callgrind_annotate", "--inclusive=no", f], capture_output=True, text=True).stdout
    open(os.path.join(out, f"top-{name}.txt"), "w").write(ann)
units = {"dm": "per stored message (one message.new delivered)", "typing": "per typing event delivered",
         "fanout": "per post.new delivered (one post, all followers)"}
result = {"profile": profile, "workload": workload, "load_avg_1m": float(load), "phases": figures}
json.dump(result, open(os.path.join(out, "instructions.json"), "w"), indent=2)
for name, f in figures.items():
    print(f"{name:7} {f['per_unit']:>12,} instructions {units.get(name, '')}  (total {f['instructions']:,})")
    ann = open(os.path.join(out, f"top-{name}.txt")).read().splitlines()
    start = next((i for i, l in enumerate(ann) if re.match(r"^-+$", l) and i > 0 and "file:function" in ann[i - 1]), None)
    if start is None:
        start = next((i for i, l in enumerate(ann) if "file:function" in l), 0)
    rows = [l for l in ann[start + 1:] if l.strip()][:top]
    for l in rows:
        print("    " + l[:160])
print(f"load average (1 min) before the run: {load}; figures in {out}/instructions.json")
PY

if [ "$update" = yes ]; then
  python3 - "$out/instructions.json" "$baseline" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
old = json.load(open(sys.argv[2])) if __import__("os").path.exists(sys.argv[2]) else {}
base = {"profile": r["profile"], "workload": r["workload"],
        "per_unit": {k: v["per_unit"] for k, v in r["phases"].items()}}
if "margin" in old:
    base["margin"] = old["margin"]
json.dump(base, open(sys.argv[2], "w"), indent=2)
open(sys.argv[2], "a").write("\n")
print(f"baseline written: {sys.argv[2]}")
PY
fi
if [ "$check" = yes ]; then
  python3 - "$out/instructions.json" "$baseline" "$margin" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); base = json.load(open(sys.argv[2])); margin = float(sys.argv[3])
bad = False
for name, want in base["per_unit"].items():
    margin = float(base.get("margin", {}).get(name, sys.argv[3]))
    got = r["phases"].get(name, {}).get("per_unit")
    if got is None:
        print(f"FAIL {name}: not measured"); bad = True; continue
    change = got / want - 1
    verdict = "FAIL" if change > margin else "ok"
    bad |= change > margin
    note = " (below the baseline by more than the margin: consider --update)" if change < -margin else ""
    print(f"{verdict:4} {name}: {got:,} vs baseline {want:,} ({change:+.1%}, margin {margin:.0%}){note}")
sys.exit(1 if bad else 0)
PY
fi
