"""A slow origin for the collapse benchmark: every GET answers after DELAY_MS milliseconds
with a 1 KiB body and `Cache-Control: max-age=3600`, and counts the requests per path.
GET /_count?path=/x answers how many requests /x received.

  slow_origin.py PORT DELAY_MS
"""
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

COUNTS = {}
LOCK = threading.Lock()
DELAY = int(sys.argv[2]) / 1000.0
BODY = b"x" * 1024


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/_count":
            path = parse_qs(url.query).get("path", [""])[0]
            with LOCK:
                body = str(COUNTS.get(path, 0)).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        with LOCK:
            COUNTS[url.path] = COUNTS.get(url.path, 0) + 1
        time.sleep(DELAY)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Cache-Control", "max-age=3600")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer.request_queue_size = 1024
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
