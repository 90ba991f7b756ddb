"""Mints a JWT with PyJWT (an independent signer).

Usage: python3 pyjwt_sign.py '{"alg": "RS256", "key_file": PEM | "secret": text | neither for
        alg none, "kid": optional, "claims": {...}}'
Prints the token.
"""
import json
import sys

import jwt

args = json.loads(sys.argv[1])
if "key_file" in args:
    with open(args["key_file"], "rb") as f:
        key = f.read()
elif "secret" in args:
    key = args["secret"]
else:
    key = None
headers = {"kid": args["kid"]} if "kid" in args else None
print(jwt.encode(args["claims"], key, algorithm=args["alg"], headers=headers))
