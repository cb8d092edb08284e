"""A push service and Matrix push gateway for hubbub's tests (tests/push.rs).

Independent of hubbub's code: Web Push payloads are decrypted with the
`http-ece` package (RFC 8291 aes128gcm) and VAPID JWTs (RFC 8292) are
verified with `cryptography`. Listens on 127.0.0.1 at a free port and prints
it as the first line of stdout.

  GET  /subscribe            -> a new subscription, as PushSubscription.toJSON()
  POST /push/<id>            <- Web Push (the endpoint of a subscription)
  POST /_matrix/push/v1/notify <- Matrix push gateway notify
  POST /mode/<id>            body "ok" | "gone" | "fail" | "reject": how <id>
                             (a subscription id or a gateway pushkey) answers
  GET  /log                  -> every request received, in order (JSON list)
"""

import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

LOCK = threading.Lock()
SUBS = {}  # id -> (private key, auth secret)
MODES = {}  # id or pushkey -> mode
LOG = []
PORT = 0


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def verify_vapid(header):
    """Checks `vapid t=<jwt>, k=<key>`: ES256 signature by k, aud, exp."""
    parts = dict(p.strip().split("=", 1) for p in header[len("vapid "):].split(","))
    token, key = parts["t"], parts["k"]
    head, claims, sig = token.split(".")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(key))
    raw = b64d(sig)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
    if json.loads(b64d(head))["alg"] != "ES256":
        raise ValueError("alg")
    c = json.loads(b64d(claims))
    if c["aud"] != f"http://127.0.0.1:{PORT}":
        raise ValueError(f"aud {c['aud']}")
    if not (time.time() < c["exp"] <= time.time() + 24 * 3600):
        raise ValueError("exp")
    return key


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/subscribe":
            key = ec.generate_private_key(ec.SECP256R1())
            auth = __import__("os").urandom(16)
            with LOCK:
                sid = str(len(SUBS) + 1)
                SUBS[sid] = (key, auth)
            point = key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
            sub = {"endpoint": f"http://127.0.0.1:{PORT}/push/{sid}", "expirationTime": None,
                   "keys": {"p256dh": b64e(point), "auth": b64e(auth)}}
            return self.reply(200, json.dumps(sub).encode())
        if self.path == "/log":
            with LOCK:
                return self.reply(200, json.dumps(LOG).encode())
        self.reply(404)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path.startswith("/mode/"):
            with LOCK:
                MODES[self.path[len("/mode/"):]] = body.decode()
            return self.reply(200, b"{}")
        if self.path.startswith("/push/"):
            return self.webpush(self.path[len("/push/"):], body)
        if self.path == "/_matrix/push/v1/notify":
            return self.gateway(body)
        self.reply(404)

    def webpush(self, sid, body):
        entry = {"kind": "webpush", "sub": sid, "topic": self.headers.get("Topic"),
                 "ttl": self.headers.get("TTL"), "urgency": self.headers.get("Urgency")}
        try:
            if self.headers.get("Content-Encoding") != "aes128gcm":
                raise ValueError("Content-Encoding")
            entry["vapid_key"] = verify_vapid(self.headers["Authorization"])
            key, auth = SUBS[sid]
            plain = http_ece.decrypt(body, private_key=key, auth_secret=auth, version="aes128gcm")
            entry["payload"] = json.loads(plain)
        except Exception as e:  # the test sees the reason in the log
            entry["error"] = f"{type(e).__name__}: {e}"
            entry["status"] = 400
            with LOCK:
                LOG.append(entry)
            return self.reply(400)
        status = {"ok": 201, "gone": 410, "fail": 500}.get(MODES.get(sid, "ok"), 201)
        entry["status"] = status
        with LOCK:
            LOG.append(entry)
        self.reply(status)

    def gateway(self, body):
        n = json.loads(body)["notification"]
        key = n["devices"][0]["pushkey"]
        mode = MODES.get(key, "ok")
        status = 500 if mode == "fail" else 200
        with LOCK:
            LOG.append({"kind": "gateway", "pushkey": key, "notification": n, "status": status})
        rejected = [key] if mode == "reject" else []
        self.reply(status, json.dumps({"rejected": rejected}).encode())


def main():
    global PORT
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    PORT = server.server_address[1]
    print(PORT, flush=True)
    # Stop when the test (our parent) closes stdin.
    threading.Thread(target=lambda: (sys.stdin.read(), server.shutdown()), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
