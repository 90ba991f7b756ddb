"""Writes COUNT signed request paths (one per line) for the signed-access load benchmark.

  mint_urls.py hmac SECRET HOST PATH COUNT OUT        # assetgate HMAC (the README's algorithm)
  mint_urls.py cloudfront KEY_PEM KEY_ID RESOURCE_BASE PATH COUNT OUT   # canned policy, SHA-1

Every URL differs (token id or expiry), so COUNT > 1 defeats any per-URL memory.
"""
import base64
import hashlib
import hmac
import sys
import time


def hmac_paths(secret, host, path, count):
    iat = int(time.time())
    exp = iat + 3000
    for i in range(count):
        tid = f"t{i}"
        fields = [("kid", "bench"), ("host", host), ("path", path), ("iat", str(iat)),
                  ("exp", str(exp)), ("tid", tid)]
        text = "AG1-HMAC-SHA256\n" + "".join(f"{n}:{len(v.encode())}:{v}\n" for n, v in fields)
        sig = base64.urlsafe_b64encode(
            hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
        yield f"{path}?ag_kid=bench&ag_iat={iat}&ag_exp={exp}&ag_tid={tid}&ag_sig={sig}"


def cloudfront_paths(key_pem, key_id, base, path, count):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    key = serialization.load_pem_private_key(open(key_pem, "rb").read(), password=None)
    start = int(time.time()) + 1800
    for i in range(count):
        expires = start + i
        policy = ('{"Statement":[{"Resource":"%s%s","Condition":{"DateLessThan":'
                  '{"AWS:EpochTime":%d}}}]}' % (base, path, expires))
        sig = base64.b64encode(key.sign(policy.encode(), padding.PKCS1v15(), hashes.SHA1())).decode()
        sig = sig.replace("+", "-").replace("=", "_").replace("/", "~")
        yield f"{path}?Expires={expires}&Signature={sig}&Key-Pair-Id={key_id}"


if __name__ == "__main__":
    kind, *args = sys.argv[1:]
    if kind == "hmac":
        secret, host, path, count, out = args
        lines = hmac_paths(secret, host, path, int(count))
    else:
        key_pem, key_id, base, path, count, out = args
        lines = cloudfront_paths(key_pem, key_id, base, path, int(count))
    with open(out, "w") as f:
        for line in lines:
            f.write(line + "\n")
