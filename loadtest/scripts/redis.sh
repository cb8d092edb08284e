# Sourced by the many-node bench scripts. start_redis PORT LOG starts a fresh
# loopback redis-server without persistence in the background, waits up to
# 5 s for it to answer, and sets REDIS_PID.
start_redis() {
  redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >"$2" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 50); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
}
