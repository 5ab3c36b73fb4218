"""CDS client authentication: the signed JWT every hook and feedback call must carry.

CDS Hooks 2.0 ("Trusting CDS Clients"): ``Authorization: Bearer <JWT>``, header ``alg``/``kid``
(``jku`` optional: ignored with inline keys, must equal ``jwks_url`` otherwise), claims ``iss``,
``aud`` (the endpoint URL, string or array), ``exp``,
``iat``, ``jti``, optional ``tenant``; never ``none``, never a symmetric algorithm. Every
failure is the same bare 401 to the caller; only a reason *category* is logged, never the token.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jwt

from cds_service.errors import AuthenticationFailed
from cds_service.security.config import SecurityConfig
from cds_service.security.jwks import ALLOWED_ALGS, ClientKeys
from cds_service.security.replay import ReplayCache

MAX_TOKEN_LENGTH = 16 * 1024
MAX_JTI_LENGTH = 255


class AuthenticationError(AuthenticationFailed):
    """Any authentication failure → bare 401. ``category`` is for logs only, never for the client."""

    def __init__(self, category: str) -> None:
        super().__init__(category)
        self.category = category


class Authenticator:
    """``authenticator(request, expected_audience_url)``: returns the verified claims or raises."""

    def __init__(
        self,
        config: SecurityConfig,
        replay: ReplayCache,
        *,
        keys: Iterable[ClientKeys] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if keys is None:
            keys = [ClientKeys(c, refetch_interval=config.jwks_refetch_interval) for c in config.clients]
        self._clients: dict[str, ClientKeys] = {k.client.iss: k for k in keys}
        self._replay = replay
        self._skew = config.clock_skew
        self._max_lifetime = config.max_lifetime
        self._clock = clock

    def __call__(self, request: Any, expected_audience_url: str | Sequence[str]) -> dict[str, Any]:
        # The app's 401 handler logs the exception's message, which is the category alone.
        return self.verify(request.headers.get("Authorization"), expected_audience_url)

    def verify(self, authorization: str | None, expected_audience: str | Sequence[str]) -> dict[str, Any]:
        """The verified claims; ``expected_audience``: the endpoint URL(s) ``aud`` must name."""
        token = _bearer_token(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError):
            raise AuthenticationError("malformed-token") from None

        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in ALLOWED_ALGS:
            raise AuthenticationError("disallowed-alg")  # none, HS*, PS*, anything unexpected
        if not isinstance(kid, str) or not kid:
            raise AuthenticationError("missing-kid")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
            raise AuthenticationError("bad-typ")
        if "crit" in header:
            raise AuthenticationError("crit-header")  # we implement no JWS extensions

        try:
            # Unverified claims are read only to choose the client whose keys to verify with.
            unverified = jwt.decode(token, options={"verify_signature": False})
        except (jwt.PyJWTError, ValueError, TypeError):
            raise AuthenticationError("malformed-token") from None
        iss = unverified.get("iss")
        client = self._clients.get(iss) if isinstance(iss, str) else None
        if client is None:
            raise AuthenticationError("unknown-issuer")
        if not _jku_acceptable(header.get("jku"), client.client.jwks_url):
            raise AuthenticationError("jku-mismatch")

        key = client.get(kid)
        if key is None:
            raise AuthenticationError("unknown-kid")
        if key.alg != alg:
            raise AuthenticationError("alg-mismatch")  # the key decides the algorithm
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.alg],
                audience=expected_audience,
                issuer=client.client.iss,
                # Times are checked below with our clock and strict types.
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                         "require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.InvalidSignatureError:
            raise AuthenticationError("bad-signature") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError("wrong-audience") from None
        except jwt.MissingRequiredClaimError:
            raise AuthenticationError("missing-claim") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise AuthenticationError("invalid-token") from None

        self._check_times(claims)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
            raise AuthenticationError("bad-jti")
        if client.client.tenant is not None and claims.get("tenant") != client.client.tenant:
            raise AuthenticationError("tenant-mismatch")
        # Last, so a token failing any other check cannot burn a legitimate jti.
        if not self._replay.claim(client.client.iss, jti, float(claims["exp"]) + self._skew):
            raise AuthenticationError("replayed-jti")
        return claims

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self._clock()
        exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf", None)
        if not _is_time(exp) or not _is_time(iat) or (nbf is not None and not _is_time(nbf)):
            raise AuthenticationError("bad-time-claim")
        if now > exp + self._skew:
            raise AuthenticationError("expired")
        if iat > now + self._skew or (nbf is not None and nbf > now + self._skew):
            raise AuthenticationError("not-yet-valid")
        if exp <= iat or exp - iat > self._max_lifetime:
            raise AuthenticationError("lifetime-too-long")


def _jku_acceptable(jku: Any, jwks_url: str | None) -> bool:
    """Keys are never fetched from a URL a token names: anyone could host their own keys there.

    * inline trusted keys (no ``jwks_url``): ``jku`` is ignored. Clients such as the CDS Hooks
      sandbox always send one; the signature is still checked against the configured keys only.
    * a configured ``jwks_url``: ``jku``, when present, must be exactly that URL, so a token meant
      for another key set is refused rather than checked against ours.
    """
    if jku is None or jwks_url is None:
        return True
    return jku == jwks_url


def _is_time(value: Any) -> bool:
    # bool is an int subclass and PyJWT would accept "123"; neither is a NumericDate.
    return type(value) in (int, float) and math.isfinite(value) and 0 <= value < 1e11


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise AuthenticationError("missing-token")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthenticationError("malformed-header")
    if len(token) > MAX_TOKEN_LENGTH:
        raise AuthenticationError("oversized-token")
    return token
