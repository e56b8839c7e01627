"""Who am I, and champion changes through the API (admin only, enforced by the API)."""

from __future__ import annotations


def test_me_returns_username_and_roles(api):
    body = api.client.get("/v1/auth/me", headers=api.headers("alice")).json()
    assert body == {"username": "alice", "roles": ["predictor"]}
    assert api.client.get("/v1/auth/me").status_code == 401


def test_promote_and_rollback_need_admin(api):
    r = api.client.post("/v1/model/promote", json={"version": "1"}, headers=api.headers("alice"))
    assert r.status_code == 403
    r = api.client.post("/v1/model/rollback", headers=api.headers("alice"))
    assert r.status_code == 403


def test_promote_unknown_version_and_bad_body(api):
    admin = api.headers("root")
    r = api.client.post("/v1/model/promote", json={"version": "999"}, headers=admin)
    assert r.status_code == 404 and "no version 999" in r.json()["detail"]
    r = api.client.post("/v1/model/promote", json={"version": "../1"}, headers=admin)
    assert r.status_code == 422
    r = api.client.post("/v1/model/promote", json={"version": "1", "force": True}, headers=admin)
    assert r.status_code == 422


def test_promote_current_champion_and_rollback_without_history(api):
    admin = api.headers("root")
    r = api.client.post("/v1/model/promote", json={"version": "1"}, headers=admin)
    assert r.status_code == 200 and r.json()["champion"] == "1" and r.json()["serving"] == "1"
    r = api.client.post("/v1/model/rollback", headers=admin)
    assert r.status_code == 409 and "nothing to roll back to" in r.json()["detail"]
