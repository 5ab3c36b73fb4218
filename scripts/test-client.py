#!/usr/bin/env python3
"""A stand-in CDS client (EHR) for trying a non-dev ``trialcds serve``: a key pair and signed tokens.

    scripts/test-client.py keygen --iss https://ehr.example.org/ --out var/test-client
        → var/test-client/private.pem (keep it), var/test-client/clients.json (TRIALCDS_CLIENTS_FILE)
    scripts/test-client.py token --key var/test-client/private.pem --iss https://ehr.example.org/ \\
        --aud http://127.0.0.1:8080/cds-services/nct05271110
        → one JWT (ES384, 5 minutes, fresh jti) on stdout

For testing only: a real EHR keeps its private key to itself and publishes only the JWK Set.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm


def keygen(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    private = out / "private.pem"
    private.write_bytes(pem)
    private.chmod(0o600)
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": args.kid, "alg": "ES384", "use": "sig"}
    client = {"iss": args.iss, "jwks": {"keys": [jwk]}}
    if args.tenant:
        client["tenant"] = args.tenant
    (out / "clients.json").write_text(json.dumps({"clients": [client]}, indent=2) + "\n")
    print(f"wrote {private} and {out / 'clients.json'} (kid {args.kid})", file=sys.stderr)
    return 0


def token(args: argparse.Namespace) -> int:
    key = serialization.load_pem_private_key(Path(args.key).read_bytes(), password=None)
    now = int(time.time())
    claims = {"iss": args.iss, "aud": args.aud, "iat": now, "exp": now + args.lifetime, "jti": str(uuid.uuid4())}
    if args.tenant:
        claims["tenant"] = args.tenant
    print(jwt.encode(claims, key, algorithm="ES384", headers={"kid": args.kid, "typ": "JWT"}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    k = sub.add_parser("keygen", help="an ES384 key pair and a clients file trusting it")
    k.add_argument("--iss", required=True)
    k.add_argument("--kid", default="test-client-1")
    k.add_argument("--tenant")
    k.add_argument("--out", default="var/test-client")
    k.set_defaults(func=keygen)
    t = sub.add_parser("token", help="one signed JWT for one endpoint")
    t.add_argument("--key", required=True)
    t.add_argument("--iss", required=True)
    t.add_argument("--aud", required=True, help="the exact endpoint URL, e.g. <public URL>/cds-services/nct05271110")
    t.add_argument("--kid", default="test-client-1")
    t.add_argument("--tenant")
    t.add_argument("--lifetime", type=int, default=300)
    t.set_defaults(func=token)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
