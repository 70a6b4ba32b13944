"""Browser login (issue #14): POST /auth/login, /auth/refresh, /auth/logout and `anju user passwd`, on the real app and
database: wrong passwords, lockout, no user enumeration, expired and rotated refresh tokens, logout; and CORS."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text
from starlette.testclient import TestClient

from anju.app import create_app
from anju.login import policy
from resolvers.access import Role, add_user
from resolvers.logins import LOGIN_FAILED, set_password
from tests.test_cli import _env

PASSWORD = "a long enough passphrase"


def _settings(settings: Any, **auth: Any) -> Any:
    return settings.model_copy(update={"auth": settings.auth.model_copy(update=auth)})


@pytest.fixture(scope="module")
async def people(sm, users, settings) -> list[str]:  # type: ignore[no-untyped-def]
    """Users of this module only (lockouts must not touch the shared ones); login-a's password set by `anju user passwd`."""
    names = ["login-a", "login-b", "login-c", "login-d", "login-e"]
    for n in names:
        await add_user(sm, n, Role.PLANNER)
    env = _env(settings) | {"ANJU_LOCAL_DB__DATABASE": settings.local_db.database}
    if not settings.uses_local_db:
        env["DATABASE_URL"] = settings.sqlalchemy_url()
    done = subprocess.run(
        [sys.executable, "-m", "anju.cli", "user", "passwd", "login-a", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "password of login-a set"
    for n in names[1:]:  # the same function the command runs, without a process each
        assert await set_password(sm, n, PASSWORD, policy(settings))
    return names


@pytest.fixture(scope="module")
def client(settings, engine, people):  # type: ignore[no-untyped-def]
    with TestClient(create_app(settings)) as c:
        yield c


def _login(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    return client.post("/auth/login", json={"name": name, "password": password})


async def _row(engine: Any, sql: str, **params: Any) -> Any:
    async with engine.connect() as c:
        return (await c.execute(text(sql), params)).one()


async def test_passwd_stores_an_argon2id_hash_and_refuses_short_passwords(engine, people, settings):  # type: ignore[no-untyped-def]
    (stored,) = await _row(engine, "SELECT password_hash FROM app_user WHERE name = 'login-a'")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)
    env = _env(settings) | {"ANJU_LOCAL_DB__DATABASE": settings.local_db.database}
    if not settings.uses_local_db:
        env["DATABASE_URL"] = settings.sqlalchemy_url()
    short = subprocess.run(
        [sys.executable, "-m", "anju.cli", "user", "passwd", "login-a", "--password-stdin"],
        input="short\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert short.returncode == 1 and "password: 10 to 1024 characters" in short.stderr
    unknown = subprocess.run(
        [sys.executable, "-m", "anju.cli", "user", "passwd", "nobody-here", "--password-stdin"],
        input=PASSWORD + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unknown.returncode == 1 and "no user 'nobody-here'" in unknown.stderr
    assert (await _row(engine, "SELECT password_hash FROM app_user WHERE name = 'login-a'"))[0] == stored


def test_login_gives_a_short_lived_access_token_that_reads_data(client, settings):  # type: ignore[no-untyped-def]
    r = _login(client, "login-a")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["tokenType"] == "Bearer" and body["user"] == {"name": "login-a", "role": "PLANNER"}
    assert body["expiresIn"] == settings.auth.access_token_minutes * 60 == 900
    claims = jwt.decode(body["accessToken"], options={"verify_signature": False})
    assert claims["sub"] == "login-a" and claims["exp"] - claims["iat"] == 900
    me = client.post("/graphql", json={"query": "{ me { name } }"}, headers={"Authorization": f"Bearer {body['accessToken']}"})
    assert me.json() == {"data": {"me": {"name": "login-a"}}}


async def test_wrong_password_unknown_user_and_no_password_read_the_same(client, engine, users):  # type: ignore[no-untyped-def]
    wrong = _login(client, "login-b", "not the password")
    unknown = _login(client, "no-such-user", "not the password")
    tokens_only = _login(client, "t-planner", "not the password")  # a user without a password (anju token only)
    for r in (wrong, unknown, tokens_only):
        assert r.status_code == 401
        body = r.json()
        assert body["errors"][0]["extensions"].pop("requestId") == r.headers["x-request-id"]  # each request's own id
        assert body == {"errors": [{"message": LOGIN_FAILED, "extensions": {"code": "UNAUTHENTICATED"}}]}
    assert (await _row(engine, "SELECT failed_logins FROM app_user WHERE name = 'login-b'"))[0] == 1
    assert _login(client, "login-b").status_code == 200  # the right password resets the count
    assert (await _row(engine, "SELECT failed_logins FROM app_user WHERE name = 'login-b'"))[0] == 0
    for hostile in ({"name": "a\x00b", "password": "xxxxxxxxxxxx"}, {"name": "a\ud800b", "password": "xxxxxxxxxxxx"}):
        r = client.post("/auth/login", content=json.dumps(hostile), headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    r = client.post("/auth/refresh", content='{"refreshToken": "a\\ud800"}', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    bad = client.post("/auth/login", json={"name": "login-b"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["message"] == "password: a non-empty string is required"
    assert client.post("/auth/login", content=b"name=x", headers={"content-type": "text/plain"}).status_code == 400


async def test_lockout_after_repeated_failures_then_it_expires(settings, engine, people):  # type: ignore[no-untyped-def]
    s = _settings(settings, max_failed_logins=3, lockout_minutes=2 / 60)  # locked for 2 s
    with TestClient(create_app(s)) as client:
        for _ in range(3):
            assert _login(client, "login-c", "wrong wrong wrong").status_code == 401
        (locked_until, failures) = await _row(
            engine, "SELECT locked_until - now(), failed_logins FROM app_user WHERE name = 'login-c'"
        )
        assert 0 < locked_until.total_seconds() <= 2 and failures == 0
        locked = _login(client, "login-c")  # the right password, while locked
        assert locked.status_code == 401 and locked.json()["errors"][0]["message"] == LOGIN_FAILED
        time.sleep(2.2)
        assert _login(client, "login-c").status_code == 200


async def test_failed_logins_from_one_address_are_throttled_across_user_names(settings, engine, people):  # type: ignore[no-untyped-def]
    """auth.failed_logins_*: an address that has used up its failed logins gets 429 RATE_LIMITED with Retry-After, for any
    user name, before any password is checked (no user's failure count grows); successful logins take nothing."""
    s = _settings(settings, failed_logins_per_minute=6, failed_logins_burst=2, max_failed_logins=50)
    with TestClient(create_app(s)) as client:
        for _ in range(3):  # successes do not use up the address's allowance
            assert _login(client, "login-d").status_code == 200
        assert [_login(client, n, "wrong wrong wrong").status_code for n in ("login-d", "login-e")] == [401, 401]
        (failures_before,) = await _row(engine, "SELECT failed_logins FROM app_user WHERE name = 'login-e'")
        limited = _login(client, "login-e", "another guess")
        assert limited.status_code == 429
        assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert 1 <= int(limited.headers["Retry-After"]) <= 11  # one failure refills in 10 s at 6 a minute
        assert _login(client, "login-d").status_code == 429  # the right password of another user: the address waits too
        (failures_after,) = await _row(engine, "SELECT failed_logins FROM app_user WHERE name = 'login-e'")
        assert failures_after == failures_before == 1  # the refused guess was never tried
    with TestClient(create_app(s)) as other:  # another process's buckets (as another worker): not limited
        assert _login(other, "login-d").status_code == 200


async def test_simultaneous_failed_logins_from_one_address_get_no_more_tries_than_the_burst(settings, engine, people):  # type: ignore[no-untyped-def]
    """Wrong guesses sent at once from one address (a client need not wait for each answer): only ``burst`` of them are
    tried, the others answer 429 before their password is checked; a failure takes its token before the check, not
    after it (else every guess in flight passes a full bucket). Successes still take nothing."""
    s = _settings(settings, failed_logins_per_minute=1, failed_logins_burst=3, max_failed_logins=50)
    (failures_before,) = await _row(engine, "SELECT failed_logins FROM app_user WHERE name = 'login-b'")
    with TestClient(create_app(s)) as client, ThreadPoolExecutor(16) as pool:
        for _ in range(5):  # successes, even many at once, leave the allowance whole
            assert set(pool.map(lambda _: _login(client, "login-b").status_code, range(4))) == {200}
        statuses = list(pool.map(lambda i: _login(client, "login-b", f"wrong guess {i}").status_code, range(16)))
    assert sorted(statuses) == [401] * 3 + [429] * 13
    (failures_after,) = await _row(engine, "SELECT failed_logins FROM app_user WHERE name = 'login-b'")
    assert failures_after - failures_before == 3  # the guesses actually tried against the password


async def test_refresh_rotates_and_reuse_revokes_the_family(settings, engine, people):  # type: ignore[no-untyped-def]
    with TestClient(create_app(_settings(settings, refresh_reuse_grace_seconds=0))) as client:
        await _rotates_and_reuse_revokes(client, engine)


async def _rotates_and_reuse_revokes(client: TestClient, engine: Any) -> None:
    first = _login(client, "login-d").json()
    second = client.post("/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert second.status_code == 200
    second_body = second.json()
    assert second_body["refreshToken"] != first["refreshToken"] and second_body["user"]["name"] == "login-d"
    digest = hashlib.sha256(first["refreshToken"].encode()).digest()
    (family, rotated, stored) = await _row(
        engine, "SELECT family, rotated_at IS NOT NULL, token_hash FROM refresh_token WHERE token_hash = :h", h=digest
    )
    assert rotated and stored == digest  # kept as SHA-256 only
    (plain,) = await _row(
        engine, "SELECT count(*) FROM refresh_token WHERE token_hash = convert_to(:t, 'UTF8')", t=first["refreshToken"]
    )
    assert plain == 0
    # the spent token again (a copy in a thief's hands): refused, and the whole login revoked
    reuse = client.post("/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert reuse.status_code == 401 and "already used" in reuse.json()["errors"][0]["message"]
    (live,) = await _row(engine, "SELECT count(*) FROM refresh_token WHERE family = :f AND revoked_at IS NULL", f=family)
    assert live == 0
    later = client.post("/auth/refresh", json={"refreshToken": second_body["refreshToken"]})
    assert later.status_code == 401 and "revoked" in later.json()["errors"][0]["message"]
    assert client.post("/auth/refresh", json={"refreshToken": "made-up"}).status_code == 401


async def test_two_tabs_refreshing_one_login_at_once_both_stay_logged_in(settings, engine, people):  # type: ignore[no-untyped-def]
    """auth.refresh_reuse_grace_seconds: a duplicated tab holds a copy of the refresh token; when both tabs refresh within
    the grace, each gets a token of its own and both keep working; a copy presented after the grace revokes the login."""
    with TestClient(create_app(_settings(settings, refresh_reuse_grace_seconds=1))) as client:
        token = _login(client, "login-d").json()["refreshToken"]
        tab_a = client.post("/auth/refresh", json={"refreshToken": token})
        tab_b = client.post("/auth/refresh", json={"refreshToken": token})
        assert tab_a.status_code == tab_b.status_code == 200
        a, b = tab_a.json()["refreshToken"], tab_b.json()["refreshToken"]
        assert len({token, a, b}) == 3
        (family,) = await _row(
            engine, "SELECT family FROM refresh_token WHERE token_hash = :h", h=hashlib.sha256(token.encode()).digest()
        )
        next_a = client.post("/auth/refresh", json={"refreshToken": a})  # each tab goes on refreshing its own chain
        next_b = client.post("/auth/refresh", json={"refreshToken": b})
        assert next_a.status_code == next_b.status_code == 200
        assert (
            client.post(
                "/graphql",
                json={"query": '{ adminArea(code: "513432") { name } }'},
                headers={"Authorization": f"Bearer {next_b.json()['accessToken']}"},
            ).status_code
            == 200
        )
        time.sleep(1.2)
        late = client.post("/auth/refresh", json={"refreshToken": a})  # a's use is now older than the grace
        assert late.status_code == 401 and "already used" in late.json()["errors"][0]["message"]
        (live,) = await _row(engine, "SELECT count(*) FROM refresh_token WHERE family = :f AND revoked_at IS NULL", f=family)
        assert live == 0
        assert client.post("/auth/refresh", json={"refreshToken": next_b.json()["refreshToken"]}).status_code == 401


def test_expired_refresh_token_is_refused(settings, people):  # type: ignore[no-untyped-def]
    with TestClient(create_app(_settings(settings, refresh_token_days=1 / 86400))) as client:  # refresh tokens live 1 s
        body = _login(client, "login-e").json()
        time.sleep(1.2)
        r = client.post("/auth/refresh", json={"refreshToken": body["refreshToken"]})
        assert r.status_code == 401 and r.json()["errors"][0]["message"] == "refresh token expired; log in again"


async def test_logout_revokes_the_login(client, engine):  # type: ignore[no-untyped-def]
    a = _login(client, "login-a").json()
    b = _login(client, "login-a").json()  # another browser of the same user
    r = client.post("/auth/logout", json={"refreshToken": a["refreshToken"]})
    assert r.status_code == 204
    assert client.post("/auth/refresh", json={"refreshToken": a["refreshToken"]}).status_code == 401
    assert client.post("/auth/refresh", json={"refreshToken": b["refreshToken"]}).status_code == 200  # untouched
    assert client.post("/auth/logout", json={"refreshToken": "unknown"}).status_code == 204


async def test_disabled_user_cannot_log_in_or_refresh(client, engine):  # type: ignore[no-untyped-def]
    body = _login(client, "login-b").json()
    async with engine.begin() as c:
        await c.execute(text("UPDATE app_user SET disabled = true WHERE name = 'login-b'"))
    try:
        assert _login(client, "login-b").json()["errors"][0]["message"] == LOGIN_FAILED
        assert client.post("/auth/refresh", json={"refreshToken": body["refreshToken"]}).status_code == 401
    finally:
        async with engine.begin() as c:
            await c.execute(text("UPDATE app_user SET disabled = false WHERE name = 'login-b'"))


def test_cors_preflight_and_headers_on_every_route(client, settings):  # type: ignore[no-untyped-def]
    origin = "http://localhost:5173"  # the development default admits pages of this machine
    for path in ("/graphql", "/tiles", "/auth/login", "/ogc/collections", "/imports/households"):
        pre = client.options(
            path,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert pre.status_code == 200, path
        assert pre.headers["access-control-allow-origin"] == origin
        assert "authorization" in pre.headers["access-control-allow-headers"].lower()
        assert pre.headers["access-control-max-age"] == str(settings.cors.max_age_seconds)
        assert "access-control-allow-credentials" not in pre.headers  # bearer tokens, never cookies
    refused = client.get("/tiles", headers={"Origin": origin})  # a 401 carries the CORS header too: the page can read why
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == origin
    other = client.options("/graphql", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers


def test_cors_lists_production_origins(settings):  # type: ignore[no-untyped-def]
    cors = settings.cors.model_copy(update={"allow_origins": ["https://map.example.cn"], "allow_origin_regex": None})
    with TestClient(create_app(settings.model_copy(update={"cors": cors}))) as client:
        ok = client.options("/graphql", headers={"Origin": "https://map.example.cn", "Access-Control-Request-Method": "POST"})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://map.example.cn"
        local = client.options("/graphql", headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST"})
        assert local.status_code == 400
