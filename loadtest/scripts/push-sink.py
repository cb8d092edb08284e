#!/usr/bin/env python3
"""A push-service sink for `dm --offline-push` runs (BENCHMARKS.md): answers
every POST with 201 and counts them. GET /count answers
`{"posts": N, "first": t, "last": t}` (Unix seconds of the first and last
POST), so a run can tell how many notifications arrived and when the queue
drained. Usage: push-sink.py PORT"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
state = {"posts": 0, "first": None, "last": None}


class Sink(BaseHTTPRequestHandler):
    # Keep-alive, as push services speak it: with HTTP/1.0 every POST was a
    # new connection, and bursts overflowed the listen backlog (SYN retries
    # of 1 s made the sink, not the sender, the limit).
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        now = time.time()
        with lock:
            state["posts"] += 1
            state["first"] = state["first"] or now
            state["last"] = now
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        with lock:
            body = json.dumps(state).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 1024
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
