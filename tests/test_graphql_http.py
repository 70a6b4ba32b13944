"""GraphQL over HTTP to the letter (issue #14): the graphql-http audit (npm) against the served app, media types and
status codes, GET for queries only, and the fast path answering planned GETs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from anju.app import create_app
from schema import planner
from tests.live import serving

WEB = Path(__file__).resolve().parent.parent / "web"
GR = "application/graphql-response+json"


@pytest.fixture(scope="module")
def client(settings, engine, admin_headers):  # type: ignore[no-untyped-def]
    with TestClient(create_app(settings), headers=admin_headers) as c:
        yield c


def test_graphql_http_audit_passes_every_must_and_should(settings, engine, users):  # type: ignore[no-untyped-def]
    with serving(create_app(settings)) as url:
        run = subprocess.run(
            ["node", str(WEB / "graphql-http-audit.mjs"), f"{url}/graphql", users["t-admin"]],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=WEB,
        )
    assert run.returncode == 0, run.stderr[-2000:]
    audit = json.loads(run.stdout)
    failed = [(r["id"], r["name"], r["reason"]) for r in audit["results"] if r["status"] != "ok"]
    must, should = audit["counts"]["MUST"], audit["counts"]["SHOULD"]
    assert (must["ok"], must["total"]) == (13, 13), failed
    assert (should["ok"], should["total"]) == (23, 23), failed


def test_media_types_and_status_codes(client):  # type: ignore[no-untyped-def]
    def post(query: str, accept: str | None = GR, **variables: object) -> object:
        headers = {"accept": accept} if accept else {}
        return client.post("/graphql", json={"query": query, "variables": variables or None}, headers=headers)

    ok = post('{ adminArea(code: "513432") { name } }')
    assert ok.status_code == 200 and ok.headers["content-type"] == f"{GR}; charset=utf-8"
    assert ok.json() == {"data": {"adminArea": {"name": "喜德县"}}}
    for query, variables in (
        ("{ adminArea(code: ", {}),  # does not parse
        ("{ adminArea(code: 1) { nope } }", {}),  # does not validate
        ("query($c: String!) { adminArea(code: $c) { name } }", {"c": 42}),  # a variable that does not coerce
    ):
        r = post(query, **variables)
        assert r.status_code == 400 and r.headers["content-type"].startswith(GR)
        body = r.json()
        assert "data" not in body and body["errors"], query
        legacy = post(query, "application/json", **variables)  # application/json: 200, the same errors, no data
        assert legacy.status_code == 200 and legacy.headers["content-type"].startswith("application/json")
        assert _without_request_ids(legacy.json()) == _without_request_ids(body)  # each request has its own id
    field_error = post("{ households(first: 100000) { totalCount } }")  # executed: a field error is 200 with data
    assert field_error.status_code == 200 and "data" in field_error.json()
    assert field_error.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert post("{ __typename }", None).headers["content-type"].startswith("application/json")  # no Accept: JSON
    assert post("{ __typename }", "*/*").headers["content-type"].startswith("application/json")
    assert post("{ __typename }", f"application/json, {GR};q=0.5").headers["content-type"].startswith("application/json")
    assert post("{ __typename }", "text/plain").status_code == 406
    r = client.post("/graphql", content=b'{"query": "{ __typename }"}', headers={"content-type": "text/plain"})
    assert r.status_code == 415


async def test_get_answers_queries_never_mutations(client, engine):  # type: ignore[no-untyped-def]
    r = client.get(
        "/graphql", params={"query": "query($c: String!) { adminArea(code: $c) { name } }", "variables": '{"c": "513432"}'}
    )
    assert r.status_code == 200 and r.json() == {"data": {"adminArea": {"name": "喜德县"}}}
    async with engine.connect() as c:
        before = await c.scalar(text("SELECT count(*) FROM audit_log"))
    async with engine.connect() as c:
        (fid, version) = (await c.execute(text("SELECT id, version FROM facility WHERE closed_on IS NULL LIMIT 1"))).one()
    close = f'closeFacility(input: {{id: "{fid}", version: {version}, closedOn: "2024-01-01"}})'
    mutation = f"mutation {{ {close} {{ facility {{ id }} }} }}"
    r = client.get("/graphql", params={"query": mutation}, headers={"accept": GR})
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert "mutation" in r.json()["errors"][0]["message"].lower()
    async with engine.connect() as c:
        assert await c.scalar(text("SELECT count(*) FROM audit_log")) == before
        assert await c.scalar(text("SELECT closed_on FROM facility WHERE id = :i"), {"i": fid}) is None


def test_planned_get_takes_the_fast_path(client):  # type: ignore[no-untyped-def]
    params = {"query": "{ relocationSites { nodes { name householdCount } } }"}
    first = client.get("/graphql", params=params, headers={"accept": GR})
    fast = planner.STATS["fast"]
    again = client.get("/graphql", params=params, headers={"accept": GR})
    assert planner.STATS["fast"] == fast + 1  # answered without strawberry
    assert again.status_code == first.status_code == 200 and again.content == first.content
    assert again.headers["content-type"].startswith(GR)
    posted = client.post("/graphql", json=params, headers={"accept": GR})  # the same plan serves POST and GET
    assert planner.STATS["fast"] == fast + 2 and posted.content == first.content


def _without_request_ids(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with ``extensions.requestId`` left out of its errors (two requests carry two ids)."""
    errors = [{**e, "extensions": {k: v for k, v in e.get("extensions", {}).items() if k != "requestId"}} for e in body["errors"]]
    return {**body, "errors": errors}
