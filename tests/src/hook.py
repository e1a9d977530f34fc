"""A webhook receiver for the lab tests, run inside a test namespace.

Verifies the HMAC signature (X-Netmon-Signature = sha256=hex(HMAC-SHA256(secret, timestamp + "." +
body))) and appends one JSON line per request to OUT: the notification id, whether the signature
verified, the decoded JSON body and the receive time (unix ms). Answers 200.

usage: hook.py PORT SECRET OUT
"""

import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, SECRET, OUT = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        stamp = self.headers.get("X-Netmon-Timestamp", "")
        given = self.headers.get("X-Netmon-Signature", "")
        want = "sha256=" + hmac.new(SECRET, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        record = {
            "id": self.headers.get("X-Netmon-Notification"),
            "signature_ok": hmac.compare_digest(given, want),
            "body": json.loads(body.decode("utf-8")),
            "received_ms": int(time.time() * 1000),
        }
        with open(OUT, "a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Hook).serve_forever()
