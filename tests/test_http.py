"""HTTP level: the Starlette app with its own lifespan engine, GraphQL over HTTP, GraphiQL, /healthz."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from anju.app import create_app


@pytest.fixture(scope="module")
def client(settings, engine, admin_headers):  # type: ignore[no-untyped-def]
    with TestClient(create_app(settings), headers=admin_headers) as c:
        yield c


def test_graphql_post_json(client):  # type: ignore[no-untyped-def]
    r = client.post(
        "/graphql",
        json={"query": '{ relocationSites(filter: {nameContains: "彝欣"}) { nodes { name householdCount population } } }'},
    )
    assert r.status_code == 200
    assert r.json() == {
        "data": {"relocationSites": {"nodes": [{"name": "彝欣社区", "householdCount": 1447, "population": 7518}]}}
    }


def test_graphql_response_media_type(client):  # type: ignore[no-untyped-def]
    r = client.post(
        "/graphql",
        json={"query": '{ adminArea(code: "513432") { name } }'},
        headers={"accept": "application/graphql-response+json"},
    )
    assert r.status_code == 200
    assert r.json()["data"]["adminArea"]["name"] == "喜德县"


def test_bad_input_over_http_is_not_500(client):  # type: ignore[no-untyped-def]
    r = client.post("/graphql", json={"query": "{ households(first: 100000) { nodes { id } } }"})
    assert r.status_code == 200
    body = r.json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Traceback" not in r.text and "SELECT" not in r.text


def test_graphiql_in_a_browser(client):  # type: ignore[no-untyped-def]
    r = client.get("/graphql", headers={"accept": "text/html"})
    assert r.status_code == 200
    assert "graphiql" in r.text.lower()


def test_healthz_ok(client):  # type: ignore[no-untyped-def]
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["database"] == "ok"


def test_healthz_database_unreachable(settings, admin_headers):  # type: ignore[no-untyped-def]
    # A port where nothing listens: the service starts and says the database is unreachable.
    dead = settings.model_copy(update={"database_url": "postgresql://anju:x@127.0.0.1:9/anju"})
    with TestClient(create_app(dead), headers=admin_headers) as c:
        r = c.get("/healthz")
        assert r.status_code == 503
        assert r.json() == {"status": "unavailable", "database": "unreachable"}
        q = c.post("/graphql", json={"query": "{ households { totalCount } }"})
        assert q.status_code == 503  # who the caller is cannot be checked
        assert q.json()["errors"][0]["extensions"]["code"] == "INTERNAL"
        assert "127.0.0.1" not in q.text and "password" not in q.text


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b'"hello"', 400, id="json-string"),
        pytest.param(b"42", 400, id="json-number"),
        pytest.param(b"null", 400, id="json-null"),
        pytest.param(b'{"query": "{ facility(id: \\"\xff\xfe\\") { name } }"}', 400, id="not-utf8"),
        pytest.param(b"{not json", 400, id="invalid-json"),
        pytest.param(b"{}", 400, id="no-query"),
        pytest.param(b'{"query": "{ __typename }", "variables": {"x": ' + b"9" * 5000 + b"}}", 400, id="huge-int"),
    ],
)
def test_malformed_bodies_answer_json_errors(client, body, status):  # type: ignore[no-untyped-def]
    r = client.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status
    assert r.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_oversized_body_is_refused(client, settings):  # type: ignore[no-untyped-def]
    query = '{ adminArea(code: "510000") { name } }' + "#" * (settings.max_body_bytes + 10)
    r = client.post("/graphql", json={"query": query})
    assert r.status_code == 413
    assert r.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


@pytest.mark.parametrize(
    "path",
    [
        "/tiles/households/" + "9" * 5000 + "/0/0.mvt",
        "/tiles/households/-1/0/0.mvt",
        "/tiles/households/1.5/0/0.mvt",
        "/tiles/households/3/8/1.mvt",
    ],
)
def test_bad_tile_paths_answer_400_json(client, path):  # type: ignore[no-untyped-def]
    r = client.get(path)
    assert r.status_code == 400
    assert r.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_deeply_nested_body(client):  # type: ignore[no-untyped-def]
    body = b'{"query": "{ __typename }", "variables": {"x": ' + b"[" * 3000 + b"]" * 3000 + b"}}"
    r = client.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_chunked_body_over_the_limit_is_refused(client, settings):  # type: ignore[no-untyped-def]
    """No Content-Length (chunked upload): the body is counted as it arrives and refused past the limit."""
    big = b'{"query": "{ me { name } }", "variables": {"pad": "' + b"x" * (settings.max_body_bytes + 10) + b'"}}'

    def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    r = client.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413 and r.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    small = b'{"query": "{ me { name } }"}'
    r = client.post("/graphql", content=iter([small[:10], small[10:]]), headers={"content-type": "application/json"})
    assert r.json() == {"data": {"me": {"name": "t-admin"}}}


class _UserLookups:
    """Counts the statements that read ``app_user`` on any engine (the app has its own)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if "FROM app_user" in statement:
            self.count += 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/graphql"),
        ("GET", "/tiles/households/14/12852/6847.mvt"),
        ("GET", "/tiles/14/12852/6847.mvt"),
        ("GET", "/tiles"),
        ("GET", "/ogc/collections/households/items?limit=3"),
        ("GET", "/ogc/collections"),
    ],
)
def test_every_route_authenticates_once_per_request(client, method, path):  # type: ignore[no-untyped-def]
    """ViewerMiddleware: one viewer lookup per request, whatever the route; without a token none of them answers data."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    lookups = _UserLookups()
    event.listen(Engine, "before_cursor_execute", lookups)
    try:
        kwargs = {"json": {"query": "{ me { name } relocationSites { totalCount } }"}} if method == "POST" else {}
        r = client.request(method, path, **kwargs)
        assert r.status_code in (200, 204), r.text
        assert lookups.count == 1, path
        anonymous = client.request(method, path, headers={"Authorization": ""}, **kwargs)
        assert anonymous.status_code == 401 and anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        assert lookups.count == 1  # no token: no lookup
    finally:
        event.remove(Engine, "before_cursor_execute", lookups)


def test_body_limit_holds_for_every_route(client, settings):  # type: ignore[no-untyped-def]
    big = b"x" * (settings.max_body_bytes + 10)
    for path in ("/graphql", "/tiles/households/14/12852/6847.mvt", "/ogc/collections", "/ogc"):
        r = client.request("POST" if path == "/graphql" else "GET", path, content=big)
        assert r.status_code == 413 and r.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX", path


def test_rate_limit_per_user_answers_429_with_retry_after(settings, users):  # type: ignore[no-untyped-def]
    """ANJU_RATE_LIMIT__PER_MINUTE: a user's burst is served, the next request waits (429 RATE_LIMITED, Retry-After);
    another user is not affected; the rate applies on every route (here GraphQL and tiles)."""
    limited = settings.model_copy(update={"rate_limit": settings.rate_limit.model_copy(update={"per_minute": 6, "burst": 3})})
    q = {"query": '{ adminArea(code: "513432") { name } }'}
    admin = {"Authorization": f"Bearer {users['t-admin']}"}
    planner = {"Authorization": f"Bearer {users['t-planner']}"}
    with TestClient(create_app(limited)) as c:
        codes = [c.post("/graphql", json=q, headers=admin).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        r = c.get("/tiles/facilities/12/3217/1712.mvt", headers=admin)
        assert r.status_code == 429
        body = r.json()
        assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert 1 <= int(r.headers["Retry-After"]) <= 11  # one request refills in 10 s at 6 a minute
        assert c.post("/graphql", json=q, headers=planner).status_code == 200
        assert c.get("/healthz").status_code == 200  # public routes are not limited


def test_pages_are_the_files_read_once(client):  # type: ignore[no-untyped-def]
    """/map (its settings written in), its script and the GraphiQL page: the files of web/pages, read once per process."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from anju.web import PAGES, page_bytes

    on_disk = {name: (PAGES / name).read_text(encoding="utf-8") for name in ("map.html", "map.js", "graphiql.html")}
    for _ in range(2):
        page = client.get("/map")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
        head, _, tail = on_disk["map.html"].partition("__CONFIG__")
        assert page.text.startswith(head) and page.text.endswith(tail)
        assert dt.datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat() in page.text  # the config's today
        script = client.get("/map/map.js")
        assert script.text == on_disk["map.js"] and script.headers["content-type"].startswith("text/javascript")
        assert client.get("/graphql", headers={"accept": "text/html"}).text == on_disk["graphiql.html"]
    assert page_bytes.cache_info().currsize >= 3 and page_bytes.cache_info().hits >= 3  # the second round: no reads


def test_a_method_a_route_does_not_take_is_a_json_error(client):  # type: ignore[no-untyped-def]
    """405 (and 404 for no route) in the JSON error shape of every answer, with ``Allow`` and the request's id."""
    for method, path, allow in (
        ("PUT", "/healthz", "GET, HEAD"),
        ("DELETE", "/map", "GET, HEAD"),
        ("POST", "/tiles/sites/1/1/1.mvt", "GET, HEAD"),
        ("GET", "/imports/households", "POST"),
    ):
        r = client.request(method, path)
        assert (r.status_code, r.headers["content-type"], r.headers["allow"]) == (405, "application/json", allow), path
        (error,) = r.json()["errors"]
        assert error["message"] == f"method {method} is not allowed on {path}; use {allow}"
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["requestId"] == r.headers["x-request-id"]
    r = client.get("/no/such/route")
    assert r.status_code == 404 and r.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
