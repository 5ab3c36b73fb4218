"""Client public keys: a JWK Set from the clients file or fetched from the client's ``jwks_url``.

The algorithm a key may verify is decided here, from the KEY (its ``alg``, else its type and
curve), never from a token header: that is what defeats ``alg: none`` and the RSA/EC-public-key-
as-HMAC-secret confusion. Symmetric keys are never loaded at all.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from cds_service.security.config import ClientConfig

log = logging.getLogger("trialcds.security")

# alg -> (kty, crv); crv None = RSA. The CDS Hooks 2.0 spec recommends ES384 and RS384.
ALLOWED_ALGS: dict[str, tuple[str, str | None]] = {
    "ES384": ("EC", "P-384"),
    "RS384": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "RS256": ("RSA", None),
}
# A key that names no alg may only be used with the spec's recommended algorithm for its type;
# ES256/RS256 need the key to say so explicitly.
DEFAULT_ALG: dict[tuple[str, str | None], str] = {("EC", "P-384"): "ES384", ("RSA", None): "RS384"}
MIN_RSA_BITS = 2048
MAX_JWKS_BYTES = 256 * 1024
JWKS_TIMEOUT = (3.05, 5.0)  # connect, read
DEFAULT_MAX_AGE = 3600.0  # also refetch known keys hourly, so a revoked key drops out


@dataclass(frozen=True)
class VerificationKey:
    kid: str
    alg: str
    key: Any  # a cryptography public key object


class JwksFetchError(Exception):
    """The JWK Set could not be fetched or read; the message is a category, safe to log."""


def keys_from_jwks(jwks: Any) -> dict[str, VerificationKey]:
    """Usable signature-verification keys by kid; unusable or ambiguous entries are dropped."""
    keys: dict[str, VerificationKey] = {}
    duplicates: set[str] = set()
    entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
    for jwk in entries if isinstance(entries, list) else []:
        key = _verification_key(jwk)
        if key is None:
            continue
        if key.kid in keys:
            duplicates.add(key.kid)  # the spec requires unique kids; never guess between two keys
        keys[key.kid] = key
    for kid in duplicates:
        del keys[kid]
    return keys


def _verification_key(jwk: Any) -> VerificationKey | None:
    if not isinstance(jwk, Mapping):
        return None
    kid, kty = jwk.get("kid"), jwk.get("kty")
    if not isinstance(kid, str) or not kid or kty not in ("EC", "RSA"):
        return None
    if jwk.get("use", "sig") != "sig":
        return None
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return None
    crv = jwk.get("crv") if kty == "EC" else None
    alg = jwk.get("alg")
    if alg is None:
        alg = DEFAULT_ALG.get((kty, crv))
    if alg not in ALLOWED_ALGS or ALLOWED_ALGS[alg] != (kty, crv):
        return None
    # Only public members go to the parser, so a JWKS that mistakenly carries "d" still yields
    # a public key and never a signing key.
    members = ("kty", "crv", "x", "y") if kty == "EC" else ("kty", "n", "e")
    public = {m: jwk[m] for m in members if m in jwk}
    try:
        if kty == "EC":
            key = ECAlgorithm.from_jwk(json.dumps(public))
        else:
            key = RSAAlgorithm.from_jwk(json.dumps(public))
            if key.key_size < MIN_RSA_BITS:
                return None
    except Exception:  # noqa: BLE001 - any malformed key is simply unusable
        return None
    return VerificationKey(kid=kid, alg=alg, key=key)


def fetch_jwks(url: str, timeout: float | tuple[float, float] = JWKS_TIMEOUT) -> dict[str, Any]:
    """GET a JWK Set: no redirects (the URL is the trust anchor), a size cap, JSON only."""
    try:
        with requests.get(url, timeout=timeout, allow_redirects=False, stream=True,
                          headers={"Accept": "application/jwk-set+json, application/json"}) as resp:
            if resp.status_code != 200:
                raise JwksFetchError(f"http-{resp.status_code}")
            body = resp.raw.read(MAX_JWKS_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise JwksFetchError(f"unreachable:{exc.__class__.__name__}") from None
    if len(body) > MAX_JWKS_BYTES:
        raise JwksFetchError("too-large")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise JwksFetchError("not-json") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise JwksFetchError("not-a-jwks")
    return data


class ClientKeys:
    """One client's keys. Static sets are parsed once; URL sets are cached and rotated.

    An unknown ``kid`` triggers a refetch (the client rotated its keys), but at most once per
    ``refetch_interval`` so a flood of tokens with random kids cannot turn the service into a
    traffic amplifier against the EHR's key endpoint.
    """

    def __init__(
        self,
        client: ClientConfig,
        *,
        refetch_interval: float = 60.0,
        max_age: float = DEFAULT_MAX_AGE,
        fetch: Callable[[str], dict[str, Any]] = fetch_jwks,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self._refetch_interval = refetch_interval
        self._max_age = max_age
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, VerificationKey] = keys_from_jwks(client.jwks) if client.jwks is not None else {}
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self.fetch_count = 0

    def get(self, kid: str) -> VerificationKey | None:
        if self.client.jwks_url is None:
            return self._keys.get(kid)
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self._max_age
            if (kid not in self._keys or stale) and self._may_fetch(now):
                self._refresh(now)
            return self._keys.get(kid)

    def _may_fetch(self, now: float) -> bool:
        return self._last_attempt is None or now - self._last_attempt >= self._refetch_interval

    def _refresh(self, now: float) -> None:
        self._last_attempt = now
        self.fetch_count += 1
        assert self.client.jwks_url is not None
        try:
            data = self._fetch(self.client.jwks_url)
        except JwksFetchError as exc:
            # Keep the keys we had: a key server blip must not lock every EHR out.
            log.warning("jwks fetch failed", extra={"category": str(exc), "iss": self.client.iss})
            return
        self._keys = keys_from_jwks(data)
        self._fetched_at = now
