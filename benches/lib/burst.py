"""Sends N concurrent GETs for one path at once (each on its own connection, all started
before any can be answered) and prints the origin's request count for the path and the
slowest and median latencies.

  burst.py NAME PORT PATH N ORIGIN_PORT
"""
import http.client
import statistics
import sys
import threading
import time

name, port, path, n, origin = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
latencies, statuses = [], []
lock = threading.Lock()
start = threading.Barrier(n)


def one():
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.connect()
    start.wait()
    t0 = time.monotonic()
    conn.request("GET", path)
    resp = conn.getresponse()
    resp.read()
    elapsed = time.monotonic() - t0
    with lock:
        latencies.append(elapsed)
        statuses.append(resp.status)


threads = [threading.Thread(target=one) for _ in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
conn = http.client.HTTPConnection("127.0.0.1", origin, timeout=5)
conn.request("GET", f"/_count?path={path}")
count = conn.getresponse().read().decode()
bad = sum(1 for s in statuses if s != 200)
print(f"{name:>18} origin_requests={count} slowest_ms={max(latencies) * 1000:.0f} "
      f"median_ms={statistics.median(latencies) * 1000:.0f} non200={bad}")
