"""Authentication and role permissions on the API."""

from __future__ import annotations

BASE = "/api/v1/sample"


def test_anonymous_and_bad_tokens_are_refused(api_as, sample):
    assert api_as(None).get(f"{BASE}/project").status_code == 401
    client = sample.test_client()
    response = client.get(f"{BASE}/project", headers={"Authorization": "Bearer fw_nope"})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_role_permissions_per_entity_and_action(api_as):
    clerk, reader = api_as("clerk"), api_as("reader")
    created = clerk.post(f"{BASE}/project", {"code": "P1", "name": "x"})
    assert created.status_code == 201
    pid = created.get_json()["id"]
    assert clerk.patch(f"{BASE}/project/{pid}", {"version": 1, "name": "y"}).status_code == 403
    assert clerk.get(f"{BASE}/day_sheet").status_code == 403
    assert reader.get(f"{BASE}/project/{pid}").status_code == 200
    assert reader.post(f"{BASE}/project", {"code": "P2", "name": "x"}).status_code == 403
    assert reader.delete(f"{BASE}/project/{pid}").status_code == 403


def test_session_login_and_csrf_on_api_writes(sample, users):
    client = sample.test_client()
    page = client.get("/login")
    assert page.status_code == 200
    token = page.data.decode().split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    response = client.post(
        "/login", data={"username": "admin", "password": "Secret-pass-1", "csrf_token": token}
    )
    assert response.status_code == 302
    assert client.get(f"{BASE}/project").status_code == 200
    no_csrf = client.post(f"{BASE}/project", json={"code": "P1", "name": "x"})
    assert no_csrf.status_code == 403
    # Signing in started a new session: the token of the sign-in page is no longer valid.
    stale = client.post(
        f"{BASE}/project", json={"code": "P1", "name": "x"}, headers={"X-CSRFToken": token}
    )
    assert stale.status_code == 403
    account = client.get("/account").data.decode()
    fresh = account.split('name="csrf-token" content="')[1].split('"')[0]
    ok = client.post(
        f"{BASE}/project", json={"code": "P1", "name": "x"}, headers={"X-CSRFToken": fresh}
    )
    assert ok.status_code == 201


def test_wrong_password_is_refused(sample, users):
    client = sample.test_client()
    page = client.get("/login").data.decode()
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    response = client.post(
        "/login", data={"username": "admin", "password": "wrong-pass-1", "csrf_token": token}
    )
    assert response.status_code == 401
    assert client.get(f"{BASE}/project").status_code == 401


def test_login_form_without_csrf_is_refused(sample, users):
    client = sample.test_client()
    response = client.post("/login", data={"username": "admin", "password": "Secret-pass-1"})
    assert response.status_code in (400, 401)
    assert client.get(f"{BASE}/project").status_code == 401
