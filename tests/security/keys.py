"""Test CDS clients: key pairs, their public JWK Sets and token minting."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISS = "https://ehr.example.org/"
AUD = "https://cds.example.org/cds-services/nct05271110"


@dataclass
class Signer:
    private_key: Any
    kid: str
    alg: str
    key_alg_in_jwk: bool = True

    @property
    def public_jwk(self) -> dict[str, Any]:
        public = self.private_key.public_key()
        algo = ECAlgorithm if self.alg.startswith("ES") else RSAAlgorithm
        jwk = algo.to_jwk(public, as_dict=True)
        jwk.update(kid=self.kid, use="sig")
        if self.key_alg_in_jwk:
            jwk["alg"] = self.alg
        return jwk

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}

    def token(self, *, headers: dict[str, Any] | None = None, drop: tuple[str, ...] = (),
              **claims: Any) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {"iss": ISS, "aud": AUD, "iat": now, "exp": now + 120, "jti": str(uuid.uuid4())}
        payload.update(claims)
        for name in drop:
            payload.pop(name, None)
        hdr = {"kid": self.kid, "typ": "JWT"}
        hdr.update(headers or {})
        return jwt.encode(payload, self.private_key, algorithm=self.alg, headers=hdr)


_RSA_CACHE: dict[int, Any] = {}


def ec_signer(kid: str = "ec-1", alg: str = "ES384") -> Signer:
    curve = ec.SECP384R1() if alg == "ES384" else ec.SECP256R1()
    return Signer(ec.generate_private_key(curve), kid, alg)


def rsa_signer(kid: str = "rsa-1", alg: str = "RS384", bits: int = 2048) -> Signer:
    # RSA generation is slow-ish; one key per size is enough for the suite.
    if bits not in _RSA_CACHE:
        _RSA_CACHE[bits] = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return Signer(_RSA_CACHE[bits], kid, alg)


def b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
