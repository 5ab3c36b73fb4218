"""Client JWT verification against the attacks a CDS service sees (unit level, no HTTP)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import create_engine

from cds_service.security.auth import AuthenticationError, Authenticator
from cds_service.security.config import ClientConfig, SecurityConfig
from cds_service.security.replay import ReplayCache
from tests.security.jwks_server import JwksServer
from tests.security.keys import AUD, ISS, b64url, ec_signer, rsa_signer


@pytest.fixture()
def replay(tmp_path):
    return ReplayCache(create_engine(f"sqlite:///{tmp_path / 'replay.db'}"))


@pytest.fixture()
def signer():
    return ec_signer()


def make_auth(replay, *clients: ClientConfig, **config) -> Authenticator:
    return Authenticator(SecurityConfig(clients=clients, public_url="https://cds.example.org", **config), replay)


@pytest.fixture()
def auth(replay, signer):
    return make_auth(replay, ClientConfig(iss=ISS, jwks=signer.jwks()))


def refused(auth: Authenticator, authorization: str | None, category: str | set[str], aud: str = AUD) -> None:
    with pytest.raises(AuthenticationError) as caught:
        auth.verify(authorization, aud)
    assert caught.value.category in ({category} if isinstance(category, str) else category)


def forge(header: dict, payload: dict, signature: bytes = b"") -> str:
    enc = lambda obj: b64url(json.dumps(obj).encode())  # noqa: E731
    return f"{enc(header)}.{enc(payload)}.{b64url(signature)}"


def claims(**extra) -> dict:
    now = int(time.time())
    return {"iss": ISS, "aud": AUD, "iat": now, "exp": now + 120, "jti": str(uuid.uuid4()), **extra}


def test_valid_es384_token_is_accepted(auth, signer):
    assert auth.verify(f"Bearer {signer.token()}", AUD)["iss"] == ISS


def test_valid_rs384_token_is_accepted(replay):
    s = rsa_signer()
    auth = make_auth(replay, ClientConfig(iss=ISS, jwks=s.jwks()))
    assert auth.verify(f"Bearer {s.token()}", AUD)["iss"] == ISS


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_sha256_algorithms_only_when_the_key_says_so(replay, alg):
    s = ec_signer(alg=alg) if alg.startswith("ES") else rsa_signer(alg=alg)
    auth = make_auth(replay, ClientConfig(iss=ISS, jwks=s.jwks()))
    assert auth.verify(f"Bearer {s.token()}", AUD)
    s.key_alg_in_jwk = False  # same key without "alg": ES256 → unusable, RSA → RS384 only
    auth = make_auth(replay, ClientConfig(iss=ISS, jwks=s.jwks()))
    refused(auth, f"Bearer {s.token()}", "unknown-kid" if alg == "ES256" else "alg-mismatch")


def test_alg_none_is_refused(auth, signer):
    token = forge({"alg": "none", "kid": signer.kid, "typ": "JWT"}, claims())
    refused(auth, f"Bearer {token}", "disallowed-alg")
    refused(auth, f"Bearer {token[:-1]}", {"disallowed-alg", "malformed-token"})  # no trailing dot


@pytest.mark.parametrize("encoding", ["pem", "jwk-json"])
def test_hmac_signed_with_the_public_key_is_refused(auth, signer, encoding):
    if encoding == "pem":
        secret = signer.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    else:
        secret = json.dumps(signer.public_jwk).encode()
    header = {"alg": "HS256", "kid": signer.kid, "typ": "JWT"}
    unsigned = forge(header, claims()).rsplit(".", 1)[0]
    sig = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()
    refused(auth, f"Bearer {unsigned}.{b64url(sig)}", "disallowed-alg")


def test_hmac_key_in_the_jwks_is_never_loaded(replay, signer):
    secret = b"shared-secret-shared-secret-1234"
    jwks = {"keys": [{"kty": "oct", "kid": "hmac", "k": b64url(secret), "alg": "HS256"}]}
    auth = make_auth(replay, ClientConfig(iss=ISS, jwks=jwks))
    header = {"alg": "HS256", "kid": "hmac", "typ": "JWT"}
    unsigned = forge(header, claims()).rsplit(".", 1)[0]
    sig = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()
    refused(auth, f"Bearer {unsigned}.{b64url(sig)}", "disallowed-alg")


def test_wrong_key_with_the_right_kid_is_refused(auth, signer):
    impostor = ec_signer(kid=signer.kid)
    refused(auth, f"Bearer {impostor.token()}", "bad-signature")


def test_tampered_payload_is_refused(auth, signer):
    header, _, sig = signer.token().split(".")
    payload = b64url(json.dumps(claims(iss=ISS)).encode())
    refused(auth, f"Bearer {header}.{payload}.{sig}", "bad-signature")


def test_alg_confusion_between_key_types_is_refused(auth, signer):
    # Header says RS384, kid names the client's EC key: the key decides, RS384 is not its alg.
    rsa = rsa_signer(kid=signer.kid)
    refused(auth, f"Bearer {rsa.token()}", "alg-mismatch")


def test_expired_token_is_refused(auth, signer):
    now = int(time.time())
    refused(auth, f"Bearer {signer.token(iat=now - 400, exp=now - 200)}", "expired")


def test_expiry_within_clock_skew_is_tolerated(auth, signer):
    now = int(time.time())
    assert auth.verify(f"Bearer {signer.token(iat=now - 200, exp=now - 30)}", AUD)


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_not_yet_valid_token_is_refused(auth, signer, claim):
    now = int(time.time())
    extra = {"iat": now + 600, "exp": now + 800} if claim == "iat" else {"nbf": now + 600}
    refused(auth, f"Bearer {signer.token(**extra)}", "not-yet-valid")


def test_lifetime_over_five_minutes_is_refused(auth, signer):
    now = int(time.time())
    refused(auth, f"Bearer {signer.token(iat=now, exp=now + 3600)}", "lifetime-too-long")


@pytest.mark.parametrize("value", ["9999999999", True, None, 1e300, [1]])
def test_non_numeric_times_are_refused(auth, signer, value):
    refused(auth, f"Bearer {signer.token(exp=value)}", "bad-time-claim" if value is not None else "missing-claim")


def test_wrong_audience_is_refused(auth, signer):
    refused(auth, f"Bearer {signer.token(aud='https://cds.example.org/cds-services/other')}", "wrong-audience")
    refused(auth, f"Bearer {signer.token(aud='https://cds.example.org/cds-services')}", "wrong-audience")
    refused(auth, f"Bearer {signer.token(aud=AUD + '/')}", "wrong-audience")
    refused(auth, f"Bearer {signer.token(aud=['https://elsewhere.example.org'])}", "wrong-audience")


def test_audience_array_containing_the_endpoint_is_accepted(auth, signer):
    assert auth.verify(f"Bearer {signer.token(aud=['https://other.example.org', AUD])}", AUD)


def test_unknown_issuer_is_refused(auth, signer):
    refused(auth, f"Bearer {signer.token(iss='https://evil.example.org/')}", "unknown-issuer")
    refused(auth, f"Bearer {signer.token(drop=('iss',))}", "unknown-issuer")


def test_replayed_jti_is_refused(auth, signer):
    token = signer.token()
    assert auth.verify(f"Bearer {token}", AUD)
    refused(auth, f"Bearer {token}", "replayed-jti")
    # A different token reusing the nonce is a replay too.
    jti = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))["jti"]
    refused(auth, f"Bearer {signer.token(jti=jti)}", "replayed-jti")


def test_replay_cache_is_shared_between_authenticators(tmp_path, signer):
    # Two gunicorn workers = two processes with their own Authenticator over one database.
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    client = ClientConfig(iss=ISS, jwks=signer.jwks())
    worker_a = make_auth(ReplayCache(create_engine(url)), client)
    worker_b = make_auth(ReplayCache(create_engine(url)), client)
    token = signer.token()
    assert worker_a.verify(f"Bearer {token}", AUD)
    refused(worker_b, f"Bearer {token}", "replayed-jti")


def test_expired_jti_rows_are_purged(tmp_path):
    clock = [1000.0]
    cache = ReplayCache(create_engine(f"sqlite:///{tmp_path / 'p.db'}"), clock=lambda: clock[0])
    assert cache.claim(ISS, "a", expires_at=1100)
    assert not cache.claim(ISS, "a", expires_at=1100)
    assert cache.claim("https://other/", "a", expires_at=1100)  # nonces are per issuer
    clock[0] = 2000.0
    assert cache.claim(ISS, "a", expires_at=2100)
    from sqlalchemy import func, select

    from cds_service.security.replay import seen_jti
    with cache._engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(seen_jti)).scalar_one() == 1


@pytest.mark.parametrize("jti", [None, "", "x" * 300, 12345])
def test_missing_or_bad_jti_is_refused(auth, signer, jti):
    token = signer.token(drop=("jti",)) if jti is None else signer.token(jti=jti)
    expected = "missing-claim" if jti is None else {"bad-jti", "invalid-token"}  # PyJWT types jti itself
    refused(auth, f"Bearer {token}", expected)


@pytest.mark.parametrize("authorization, category", [
    (None, "missing-token"),
    ("", "missing-token"),
    ("Bearer", "malformed-header"),
    ("Bearer ", "malformed-header"),
    ("Basic dXNlcjpwYXNz", "malformed-header"),
    ("Bearer a b", "malformed-header"),
    ("Bearer garbage", "malformed-token"),
    ("Bearer a.b.c", "malformed-token"),
    ("Bearer " + "A" * 20000, "oversized-token"),
    ("Bearer eyJhbGciOiJFUzM4NCJ9.e30.", "missing-kid"),
])
def test_garbage_and_missing_authorization_is_refused(auth, authorization, category):
    refused(auth, authorization, category)


def test_missing_kid_is_refused(auth, signer):
    import jwt as pyjwt
    token = pyjwt.encode(claims(), signer.private_key, algorithm="ES384")
    refused(auth, f"Bearer {token}", "missing-kid")


def test_unknown_kid_is_refused(auth, signer):
    refused(auth, f"Bearer {signer.token(headers={'kid': 'other'})}", "unknown-kid")


def test_crit_header_and_odd_typ_are_refused(auth, signer):
    # PyJWT itself refuses crit extensions it does not know; either way the token is out.
    refused(auth, f"Bearer {signer.token(headers={'crit': ['exp'], 'exp': 1})}", {"crit-header", "malformed-token"})
    refused(auth, f"Bearer {signer.token(headers={'typ': 'at+jwt'})}", "bad-typ")


def test_jku_pointing_elsewhere_is_refused_when_keys_come_from_a_url(replay, signer):
    auth = make_auth(replay, ClientConfig(iss=ISS, jwks_url="https://ehr.example.org/jwks.json"))
    token = signer.token(headers={"jku": "https://attacker.example.net/jwks.json"})
    refused(auth, f"Bearer {token}", "jku-mismatch")


def test_jku_is_ignored_with_inline_keys_and_never_fetched(replay, signer):
    # The CDS Hooks sandbox always sends a jku. With inline trusted keys it is ignored: a token
    # signed by the trusted key passes, one signed by the key the jku serves does not, and the
    # jku URL is never contacted.
    impostor = ec_signer(kid=signer.kid)
    auth = make_auth(replay, ClientConfig(iss=ISS, jwks=signer.jwks()))
    with JwksServer(impostor.jwks()) as attacker:
        assert auth.verify(f"Bearer {signer.token(headers={'jku': attacker.url})}", AUD)["iss"] == ISS
        refused(auth, f"Bearer {impostor.token(headers={'jku': attacker.url})}", "bad-signature")
        assert attacker.requests == 0


def test_tenant_is_checked_when_the_client_has_one(replay, signer):
    auth = make_auth(replay, ClientConfig(iss=ISS, jwks=signer.jwks(), tenant="hospital-a"))
    refused(auth, f"Bearer {signer.token(tenant='hospital-b')}", "tenant-mismatch")
    refused(auth, f"Bearer {signer.token()}", "tenant-mismatch")
    assert auth.verify(f"Bearer {signer.token(tenant='hospital-a')}", AUD)


def test_each_client_only_verifies_with_its_own_keys(replay, signer):
    other = ec_signer(kid="other-kid")
    auth = make_auth(replay, ClientConfig(iss=ISS, jwks=signer.jwks()),
                     ClientConfig(iss="https://ehr-b.example.org/", jwks=other.jwks()))
    # Client B's key, claiming to be client A.
    refused(auth, f"Bearer {other.token()}", "unknown-kid")
    assert auth.verify(f"Bearer {other.token(iss='https://ehr-b.example.org/')}", AUD)
