"""Sends a presigned POST form to a bucket as a browser would (multipart/form-data, the
file last), with botocore's own HTTP stack (urllib3).

Usage: python3 post_form.py '{"url": ..., "fields": {...}, "file": PATH,
        "set": {"field": "value", ...} optional}'
`set` overrides or adds form fields (to tamper with a signed one, or to give Content-Type).
Prints the status code, then the response body.
"""
import json
import sys
import uuid

import urllib3  # botocore's HTTP client library

args = json.loads(sys.argv[1])
fields = dict(args["fields"])
fields.update(args.get("set", {}))
with open(args["file"], "rb") as f:
    data = f.read()
boundary = uuid.uuid4().hex
parts = []
for name, value in fields.items():
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    )
parts.append(
    f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="upload"\r\n'
    f"Content-Type: application/octet-stream\r\n\r\n".encode()
    + data
    + b"\r\n"
)
parts.append(f"--{boundary}--\r\n".encode())
body = b"".join(parts)
r = urllib3.PoolManager().request(
    "POST",
    args["url"],
    body=body,
    headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    retries=False,
)
print(r.status)
print(r.data.decode("utf-8", "replace"))
