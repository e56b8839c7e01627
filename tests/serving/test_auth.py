"""Every authentication and authorisation failure, with its status and body."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi.testclient import TestClient

from rakuten_mlops.serving.app import create_app
from rakuten_mlops.serving.security import InsecureConfigError

PREDICT = {"designation": "Figurine Star Wars"}


def _claims(api, **overrides):
    now = datetime.now(UTC)
    claims = {
        "sub": "alice", "roles": ["predictor"], "iss": api.settings.jwt_issuer,
        "aud": api.settings.jwt_audience, "iat": now, "exp": now + timedelta(minutes=5),
    }  # fmt: skip
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _forge(api, kit, key=None, algorithm="HS256", **overrides):
    return jwt.encode(_claims(api, **overrides), key or kit.JWT_SECRET, algorithm=algorithm)


def _b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _predict(api, token=None, headers=None):
    h = headers if headers is not None else ({"Authorization": f"Bearer {token}"} if token else {})
    return api.client.post("/v1/predict", json=PREDICT, headers=h)


def test_login_returns_a_bearer_token_with_checked_claims(api, kit):
    r = api.client.post("/v1/auth/token", data={"username": "alice", "password": kit.PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == api.settings.jwt_expire_minutes * 60
    claims = jwt.decode(
        body["access_token"], kit.JWT_SECRET, algorithms=["HS256"], audience="rakuten-mlops-api"
    )
    assert claims["sub"] == "alice" and claims["roles"] == ["predictor"] and claims["iss"] == "rakuten-mlops"
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"


@pytest.mark.parametrize("username", ["alice", "nobody-here"])
def test_wrong_credentials_are_401_with_one_message_for_known_and_unknown_users(api, username):
    r = api.client.post("/v1/auth/token", data={"username": username, "password": "wrong-password-123"})
    assert r.status_code == 401
    assert r.json() == {"detail": "incorrect username or password"}
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_disabled_user_cannot_log_in(api, kit):
    r = api.client.post("/v1/auth/token", data={"username": "mallory", "password": kit.PASSWORD})
    assert r.status_code == 403
    assert r.json() == {"detail": "user account is disabled"}


def test_missing_token_is_401(api):
    r = _predict(api)
    assert r.status_code == 401
    assert "not authenticated" in r.json()["detail"] and "/v1/auth/token" in r.json()["detail"]
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer not-a-jwt", "token is malformed"),
        ("Bearer a.b.c", "token is malformed"),
        ("Basic YWxpY2U6cGFzcw==", "not authenticated"),
        ("Bearer", "not authenticated"),
    ],
)
def test_malformed_authorization_is_401(api, header, expected):
    r = _predict(api, headers={"Authorization": header})
    assert r.status_code == 401
    assert expected in r.json()["detail"]


def test_expired_token_is_401(api, kit):
    past = datetime.now(UTC) - timedelta(hours=2)
    r = _predict(api, _forge(api, kit, iat=past, exp=past + timedelta(minutes=5)))
    assert r.status_code == 401
    assert r.json()["detail"].startswith("token has expired")


def test_bad_signature_is_401(api, kit):
    r = _predict(api, _forge(api, kit, key="another-secret-of-sufficient-length"))
    assert r.status_code == 401
    assert r.json() == {"detail": "token signature is invalid"}


def test_tampered_payload_is_401(api):
    header, _, signature = api.tokens["alice"].split(".")
    payload = _b64(_claims(api, roles=["admin", "predictor"], iat=1, exp=4102444800))
    r = api.client.post(
        "/v1/model/reload", headers={"Authorization": f"Bearer {header}.{payload}.{signature}"}
    )
    assert r.status_code == 401
    assert r.json() == {"detail": "token signature is invalid"}


def test_alg_none_is_rejected(api):
    claims = _claims(api)
    claims = {**claims, "iat": int(claims["iat"].timestamp()), "exp": int(claims["exp"].timestamp())}
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    r = _predict(api, token)
    assert r.status_code == 401
    assert "algorithm" in r.json()["detail"]


def test_other_hmac_algorithm_with_the_right_key_is_rejected(api, kit):
    r = _predict(api, _forge(api, kit, algorithm="HS512"))
    assert r.status_code == 401
    assert r.json() == {"detail": "token is signed with an algorithm this API does not accept"}


def test_wrong_audience_is_401(api, kit):
    r = _predict(api, _forge(api, kit, aud="some-other-api"))
    assert r.status_code == 401
    assert r.json()["detail"] == "token was not issued for this API (wrong audience)"


def test_wrong_issuer_is_401(api, kit):
    r = _predict(api, _forge(api, kit, iss="someone-else"))
    assert r.status_code == 401
    assert "wrong issuer" in r.json()["detail"]


@pytest.mark.parametrize("claim", ["exp", "sub", "aud", "iss", "iat", "roles"])
def test_missing_claim_is_401(api, kit, claim):
    r = _predict(api, _forge(api, kit, **{claim: None}))
    assert r.status_code == 401
    assert claim in r.json()["detail"]


def test_token_of_unknown_user_is_401(api, kit):
    r = _predict(api, _forge(api, kit, sub="ghost"))
    assert r.status_code == 401
    assert r.json() == {"detail": "token refers to a user that does not exist"}


def test_disabled_user_token_stops_working(api):
    r = _predict(api, api.tokens["mallory"])
    assert r.status_code == 401
    assert r.json() == {"detail": "user account is disabled"}


def test_predictor_cannot_reload_or_manage_users(api):
    for method, path in [("post", "/v1/model/reload"), ("get", "/v1/users")]:
        r = getattr(api.client, method)(path, headers=api.headers("alice"))
        assert r.status_code == 403
        assert r.json()["detail"].startswith("this needs the 'admin' role")


def test_role_claim_cannot_escalate_privileges(api, kit):
    # Even a correctly signed token claiming admin is checked against the user's stored role.
    r = api.client.post(
        "/v1/model/reload", headers=kit.bearer(_forge(api, kit, roles=["admin", "predictor"]))
    )
    assert r.status_code == 403


def test_admin_can_reload_and_manage_users(api, kit):
    r = api.client.post("/v1/model/reload", headers=api.headers("root"))
    assert r.status_code == 200 and r.json()["changed"] is False
    r = api.client.post(
        "/v1/users",
        json={"username": "bob", "password": kit.PASSWORD, "role": "predictor"},
        headers=api.headers("root"),
    )
    assert r.status_code == 201 and r.json()["role"] == "predictor"
    bob = kit.login(api.client, "bob")
    assert _predict(api, bob).status_code == 200
    r = api.client.post(
        "/v1/users", json={"username": "bob", "password": kit.PASSWORD}, headers=api.headers("root")
    )
    assert r.status_code == 409 and "already exists" in r.json()["detail"]
    r = api.client.post("/v1/users/bob/disable", headers=api.headers("root"))
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert _predict(api, bob).status_code == 401
    assert {u["username"] for u in api.client.get("/v1/users", headers=api.headers("root")).json()} >= {
        "bob",
        "root",
    }


def test_login_failures_are_rate_limited_per_user_and_ip(api, kit):
    kit.add_user(api.settings, "carol")
    for _ in range(api.settings.login_max_failures):
        r = api.client.post("/v1/auth/token", data={"username": "carol", "password": "wrong-password-123"})
        assert r.status_code == 401
    r = api.client.post("/v1/auth/token", data={"username": "carol", "password": kit.PASSWORD})
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 0
    assert r.json()["detail"].startswith("too many failed logins")
    # Another user from the same address is not blocked.
    assert (
        api.client.post("/v1/auth/token", data={"username": "alice", "password": kit.PASSWORD}).status_code
        == 200
    )


def test_production_refuses_to_start_with_a_placeholder_secret(make_settings):
    for secret in (None, "change-me", "short"):
        with pytest.raises(InsecureConfigError, match="RAKUTEN_JWT_SECRET"):
            create_app(make_settings(env="production", jwt_secret=secret))


def test_development_generates_a_private_secret_and_says_so(make_settings, kit, caplog):
    settings = make_settings(jwt_secret=None)
    kit.add_user(settings, "dave")
    with caplog.at_level(logging.WARNING, logger="rakuten_mlops.serving.security"):
        app = create_app(settings)
    assert "no RAKUTEN_JWT_SECRET" in caplog.text
    secret_path = settings.serving_dir / "dev-jwt-secret"
    assert stat.S_IMODE(os.stat(secret_path).st_mode) == 0o600
    with TestClient(app) as client:
        token = kit.login(client, "dave")
        jwt.decode(token, secret_path.read_text(), algorithms=["HS256"], audience=settings.jwt_audience)
        assert client.post("/v1/predict", json=PREDICT, headers=kit.bearer(token)).status_code == 200
    # A restarted development server reuses the secret: tokens survive.
    assert create_app(settings).state.serving.tokens.secret == secret_path.read_text()
