#!/usr/bin/env bash
# One run of `dm` with push on or off (BENCHMARKS.md, "`dm` to offline recipients with push on"):
#   loadtest/scripts/push-bench.sh online|push RATE_PER_PAIR RUN_LABEL
# A fresh release server on 9310 (metrics 10310), push-sink.py on 9399, 100 pairs for 15 s;
# prints acks, ack latency, what the sink received 5 s after the run, and the queue depth.
set -u
cd "$(dirname "$0")/../.."
mode=$1; rate=$2; run=$3
port=9310
pkill -f "push-sink.py 9399" 2>/dev/null; sleep 0.3
python3 loadtest/scripts/push-sink.py 9399 >/dev/null 2>&1 & sink=$!
sleep 0.5
pid=$(loadtest/scripts/server.sh /tmp/pb $port --push-allow-http --push-max-pending 10000)
extra=""; [ "$mode" = push ] && extra="--offline-push http://127.0.0.1:9399/push"
load=$(cut -d' ' -f1 /proc/loadavg)
out=$(target/release/hubbub-loadtest --target 127.0.0.1:$port --json dm --pairs 100 --rate $rate --seconds 15 --drain 5 $extra 2>/dev/null)
sleep 5
count=$(curl -s http://127.0.0.1:9399/count)
metrics=$(curl -s http://127.0.0.1:10310/metrics | grep -E "^hubbub_push_(not_queued|queue_depth|sent|failed)" | tr '\n' ' ')
kill $pid; kill $sink
echo "$mode rate=$rate run=$run load=$load $(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); p=d["phase"]; a=p["ack"]; print("sent=%d acked=%d delivered=%d errors=%s ack_p50=%.2f ack_p99=%.2f ack_max=%.2f" % (p["sent"],p["acked"],p["delivered"],p["errors"],a["p50_ms"],a["p99_ms"],a["max_ms"]))' 2>/dev/null || echo "$out" | tail -c 600) sink=$count $metrics"
