"""Keys from a client's jwks_url: fetched, cached, rotated on an unknown kid, rate-limited."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from cds_service.security.auth import AuthenticationError, Authenticator
from cds_service.security.config import ClientConfig, ConfigError, SecurityConfig, parse_clients
from cds_service.security.jwks import ClientKeys, JwksFetchError, fetch_jwks, keys_from_jwks
from cds_service.security.replay import ReplayCache
from tests.security.jwks_server import JwksServer
from tests.security.keys import AUD, ISS, ec_signer, rsa_signer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def replay(tmp_path):
    return ReplayCache(create_engine(f"sqlite:///{tmp_path / 'r.db'}"))


def test_unknown_kid_triggers_one_refetch_and_the_rate_limit_holds(replay):
    old, new = ec_signer(kid="2026-01"), ec_signer(kid="2026-02")
    clock = Clock()
    with JwksServer(old.jwks()) as server:
        client = ClientConfig(iss=ISS, jwks_url=server.url)
        keys = ClientKeys(client, refetch_interval=60, clock=clock)
        auth = Authenticator(SecurityConfig(clients=(client,)), replay, keys=[keys])

        assert auth.verify(f"Bearer {old.token()}", AUD)
        assert server.requests == 1
        assert auth.verify(f"Bearer {old.token()}", AUD)
        assert server.requests == 1  # cached

        # The EHR rotates: the new kid is unknown → exactly one refetch, then accepted.
        clock.now += 61
        server.jwks = {"keys": [old.public_jwk, new.public_jwk]}
        assert auth.verify(f"Bearer {new.token(headers={'jku': server.url})}", AUD)
        assert server.requests == 2

        # A flood of unknown kids within the interval costs no fetch at all.
        for i in range(20):
            with pytest.raises(AuthenticationError) as caught:
                auth.verify(f"Bearer {ec_signer(kid=f'random-{i}').token()}", AUD)
            assert caught.value.category == "unknown-kid"
        assert server.requests == 2

        # Once the interval has passed, an unknown kid may cost one more fetch, and only one.
        clock.now += 61
        for i in range(5):
            with pytest.raises(AuthenticationError):
                auth.verify(f"Bearer {ec_signer(kid=f'later-{i}').token()}", AUD)
        assert server.requests == 3


def test_keys_are_refreshed_after_max_age_so_revoked_keys_drop_out():
    old = ec_signer(kid="a")
    clock = Clock()
    with JwksServer(old.jwks()) as server:
        keys = ClientKeys(ClientConfig(iss=ISS, jwks_url=server.url), refetch_interval=60, max_age=3600, clock=clock)
        assert keys.get("a") is not None
        server.jwks = {"keys": []}
        clock.now += 3601
        assert keys.get("a") is None
        assert server.requests == 2


def test_fetch_failure_keeps_the_previous_keys():
    signer = ec_signer(kid="a")
    clock = Clock()
    calls = []

    def fetch(url):
        calls.append(url)
        if len(calls) > 1:
            raise JwksFetchError("unreachable:ConnectionError")
        return signer.jwks()

    keys = ClientKeys(ClientConfig(iss=ISS, jwks_url="https://ehr.example.org/jwks"), refetch_interval=60,
                      max_age=10, clock=clock, fetch=fetch)
    assert keys.get("a") is not None
    clock.now += 100
    assert keys.get("a") is not None
    assert len(calls) == 2


def test_fetch_refuses_redirects_errors_and_non_jwks():
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import threading

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://127.0.0.1:1/evil")
                self.end_headers()
                return
            body = {"/html": b"<html>", "/list": b"[1,2]", "/big": b"{" + b" " * 300_000 + b"}"}.get(self.path, b"")
            self.send_response(200 if self.path != "/500" else 500)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for path, category in [("/redirect", "http-302"), ("/500", "http-500"), ("/html", "not-json"),
                               ("/list", "not-a-jwks"), ("/big", "too-large")]:
            with pytest.raises(JwksFetchError) as caught:
                fetch_jwks(base + path)
            assert str(caught.value) == category
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(JwksFetchError):
        fetch_jwks("http://127.0.0.1:1/jwks.json", timeout=1)


def test_jwks_parsing_drops_unusable_and_ambiguous_keys():
    ec, weak_rsa = ec_signer(kid="ok"), rsa_signer(kid="weak", bits=1024)
    dup1, dup2 = ec_signer(kid="dup"), ec_signer(kid="dup")
    enc = dict(ec_signer(kid="enc").public_jwk, use="enc")
    wrong_curve = dict(ec_signer(kid="curve", alg="ES256").public_jwk, alg="ES384")
    ps = dict(rsa_signer(kid="ps").public_jwk, alg="PS384")
    jwks = {"keys": [ec.public_jwk, weak_rsa.public_jwk, dup1.public_jwk, dup2.public_jwk, enc, wrong_curve, ps,
                     {"kty": "oct", "kid": "hs", "k": "c2VjcmV0"}, "junk", {"kid": "nokty"}, {"kty": "EC", "kid": "x"}]}
    assert set(keys_from_jwks(jwks)) == {"ok"}
    assert keys_from_jwks({"keys": "nope"}) == {}
    assert keys_from_jwks(None) == {}


def test_private_members_in_a_jwks_never_yield_a_signing_key():
    s = ec_signer(kid="p")
    from jwt.algorithms import ECAlgorithm
    private = ECAlgorithm.to_jwk(s.private_key, as_dict=True) | {"kid": "p", "alg": "ES384"}
    key = keys_from_jwks({"keys": [private]})["p"].key
    assert not hasattr(key, "sign")


@pytest.mark.parametrize("data", [
    None, [], {"clients": {}}, {"clients": ["x"]}, {"clients": [{"jwks": {"keys": []}}]},
    {"clients": [{"iss": "a"}]},
    {"clients": [{"iss": "a", "jwks": {"keys": []}, "jwks_url": "https://a/jwks"}]},
    {"clients": [{"iss": "a", "jwks_url": "http://ehr.example.org/jwks"}]},  # plain http off loopback
    {"clients": [{"iss": "a", "jwks_url": "https://u:p@ehr.example.org/jwks"}]},
    {"clients": [{"iss": "a", "jwks": {"keys": []}}, {"iss": "a", "jwks": {"keys": []}}]},
    {"clients": [{"iss": "a", "jwks": {"keys": []}, "tenant": ""}]},
])
def test_bad_clients_files_are_refused(data):
    with pytest.raises(ConfigError):
        parse_clients(data)


def test_good_clients_file_parses():
    clients = parse_clients({"clients": [
        {"iss": "https://a/", "jwks": {"keys": []}, "tenant": "t"},
        {"iss": "https://b/", "jwks_url": "https://b.example.org/.well-known/jwks.json"},
        {"iss": "https://c/", "jwks_url": "http://127.0.0.1:9999/jwks.json"},
    ]})
    assert [c.iss for c in clients] == ["https://a/", "https://b/", "https://c/"]
    assert clients[0].tenant == "t"
