"""Signs a CloudFront URL with botocore's CloudFrontSigner (an independent signer).

Usage: python3 botocore_sign.py '{"key_id": ..., "key_file": ..., "url": ..., "expires": N,
        "resource": optional, "not_before": optional, "ip": optional}'
Prints the signed URL. A custom policy is used when resource, not_before or ip is given.
"""
import datetime
import json
import sys

from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


def utc(seconds):
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)


args = json.loads(sys.argv[1])
with open(args["key_file"], "rb") as f:
    key = serialization.load_pem_private_key(f.read(), password=None)
signer = CloudFrontSigner(args["key_id"], lambda m: key.sign(m, padding.PKCS1v15(), hashes.SHA1()))
if any(k in args for k in ("resource", "not_before", "ip")):
    policy = signer.build_policy(
        args.get("resource", args["url"]),
        utc(args["expires"]),
        date_greater_than=utc(args["not_before"]) if "not_before" in args else None,
        ip_address=args.get("ip"),
    )
    print(signer.generate_presigned_url(args["url"], policy=policy))
else:
    print(signer.generate_presigned_url(args["url"], date_less_than=utc(args["expires"])))
