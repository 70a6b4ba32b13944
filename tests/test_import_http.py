"""Imports over HTTP: POST /imports/households (raw body and multipart) → 202 and a job id, GraphQL importJob(id) until
done, GET /imports/{id}/report.csv; who may import and see which job. The same code as `anju import households`
(tests/test_household_import.py covers the rules). Households here are GENERATED TEST DATA."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.testclient import TestClient
from typer.testing import CliRunner

from anju import cli, db
from anju.app import create_app
from anju.auth import issue_token
from anju.seed import load_demo
from resolvers.access import Role, add_user
from tests.test_household_import import family, write_csv

NAME = "anju_test_import_http"
JOB = (
    "query($id: ID!) { importJob(id: $id) { id kind state fileName rows written error dryRun validOnly reportUrl "
    "households { inserted updated unchanged rejected } members { inserted updated unchanged rejected } problemCount "
    "problems(first: 10) { row column value reason } } }"
)


@pytest.fixture(scope="module")
async def web(settings):  # type: ignore[no-untyped-def]
    await db.ensure_database(settings, NAME, drop_first=True)
    await db.migrate(settings, NAME)
    eng = db.create_engine(settings, NAME)
    await load_demo(eng)
    sm = async_sessionmaker(eng, expire_on_commit=False)
    for name, role, areas in (
        ("h-admin", Role.ADMIN, ()),
        ("h-officer", Role.COUNTY_OFFICER, ("513432",)),
        ("h-officer-zhaojue", Role.COUNTY_OFFICER, ("513431",)),
        ("h-planner", Role.PLANNER, ()),
    ):
        await add_user(sm, name, role, areas, None)
    local = settings.model_copy(
        update={"local_db": settings.local_db.model_copy(update={"database": NAME})}
        if settings.uses_local_db
        else {"database_url": settings.sqlalchemy_url(NAME)}
    )
    tokens = {
        n: {"Authorization": f"Bearer {issue_token(local, n)}"}
        for n in ("h-admin", "h-officer", "h-officer-zhaojue", "h-planner")
    }
    yield {"eng": eng, "settings": local, "tokens": tokens}
    await eng.dispose()


def wait_done(c: TestClient, job_id: str, headers: dict[str, str], timeout: float = 90) -> dict[str, Any]:
    deadline = time.time() + timeout
    while True:
        job = c.post("/graphql", json={"query": JOB, "variables": {"id": job_id}}, headers=headers).json()["data"]["importJob"]
        if job["state"] in ("done", "failed") or time.time() > deadline:
            return job  # type: ignore[no-any-return]
        time.sleep(0.3)


async def count(eng: Any, sql: str) -> int:
    async with eng.connect() as c:
        return int(await c.scalar(text(sql)))


async def test_upload_raw_body_runs_the_import(web, tmp_path):  # type: ignore[no-untyped-def]
    rows = family("H-RAW", 3, 900)
    data = write_csv(tmp_path / "raw.csv", rows).read_bytes()
    admin = web["tokens"]["h-admin"]
    done_jobs = {"name": "anju_import_jobs_total", "labels": {"kind": "households", "state": "done"}}
    before = REGISTRY.get_sample_value(done_jobs["name"], done_jobs["labels"]) or 0  # type: ignore[arg-type]
    with TestClient(create_app(web["settings"])) as c:
        r = c.post("/imports/households?filename=花名册.csv", content=data, headers=admin)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        assert r.json() == {"id": job_id, "state": "queued", "report": f"/imports/{job_id}/report.csv"}
        job = wait_done(c, job_id, admin)
    assert job["state"] == "done" and job["written"] and job["error"] is None
    assert (job["fileName"], job["rows"], job["problemCount"]) == ("花名册.csv", 3, 0)
    assert job["households"] == {"inserted": 1, "updated": 0, "unchanged": 0, "rejected": 0}
    assert job["members"] == {"inserted": 3, "updated": 0, "unchanged": 0, "rejected": 0}
    assert (
        await count(
            web["eng"], "SELECT count(*) FROM member mb JOIN household h ON h.id = mb.household_id WHERE h.code = 'H-RAW'"
        )
        == 3
    )
    deadline = time.monotonic() + 10  # the job's worker thread counts it as it ends (metrics of issue #16)
    while (REGISTRY.get_sample_value(done_jobs["name"], done_jobs["labels"]) or 0) < before + 1:  # type: ignore[arg-type]
        assert time.monotonic() < deadline, "anju_import_jobs_total{kind=households,state=done} not counted"
        time.sleep(0.05)


async def test_multipart_valid_only_as_officer_with_report(web, tmp_path):  # type: ignore[no-untyped-def]
    good = family("H-MP-1", 2, 910)
    bad = family("H-MP-2", 1, 920)
    bad[0]["birth_year"] = "1850"  # row 4
    data = write_csv(tmp_path / "mp.csv", good + bad).read_bytes()
    officer = web["tokens"]["h-officer"]
    with TestClient(create_app(web["settings"])) as c:
        r = c.post(
            "/imports/households",
            files={"file": ("roster.csv", data, "text/csv")},
            data={"validOnly": "true"},
            headers=officer,
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        job = wait_done(c, job_id, officer)
        assert (job["state"], job["validOnly"], job["written"]) == ("done", True, True)
        assert job["households"] == {"inserted": 1, "updated": 0, "unchanged": 0, "rejected": 1}
        assert job["problems"] == [
            {"row": 4, "column": "出生年份 birth_year", "value": "1850", "reason": job["problems"][0]["reason"]}
        ]
        assert job["problems"][0]["reason"].startswith("birthYear: 1850 is outside 1900..")
        report = c.get(f"/imports/{job_id}/report.csv", headers=officer)
        assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
        got = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
        assert got == [
            ["行号 row", "列 column", "值 value", "原因 reason"],
            ["4", "出生年份 birth_year", "1850", job["problems"][0]["reason"]],
        ]
        # another officer sees neither the job nor its report; an admin sees both
        other = web["tokens"]["h-officer-zhaojue"]
        assert (
            c.post("/graphql", json={"query": JOB, "variables": {"id": job_id}}, headers=other).json()["data"]["importJob"]
            is None
        )
        assert c.get(f"/imports/{job_id}/report.csv", headers=other).status_code == 404
        assert wait_done(c, job_id, web["tokens"]["h-admin"])["id"] == job_id
    async with web["eng"].connect() as conn:
        who = (await conn.execute(text("SELECT DISTINCT user_name FROM audit_log WHERE action = 'importHouseholds'"))).all()
    assert ("h-officer",) in who


async def test_refusals(web, tmp_path):  # type: ignore[no-untyped-def]
    data = write_csv(tmp_path / "x.csv", family("H-NO", 1, 930)).read_bytes()
    households = await count(web["eng"], "SELECT count(*) FROM household")
    with TestClient(create_app(web["settings"])) as c:
        assert c.post("/imports/households?filename=x.csv", content=data).status_code == 401
        r = c.post("/imports/households?filename=x.csv", content=data, headers=web["tokens"]["h-planner"])
        assert (r.status_code, r.json()["errors"][0]["extensions"]["code"]) == (403, "FORBIDDEN")
        r = c.post("/imports/ledgers?filename=x.csv", content=data, headers=web["tokens"]["h-admin"])
        assert r.status_code == 404
        r = c.post("/imports/households", content=data, headers=web["tokens"]["h-admin"])  # no name, no type
        assert r.status_code == 400 and "filename" in r.json()["errors"][0]["message"]
        r = c.post("/imports/households?filename=x.csv&dryRun=perhaps", content=data, headers=web["tokens"]["h-admin"])
        assert r.status_code == 400 and "dryRun" in r.json()["errors"][0]["message"]
        assert c.get("/imports/999999/report.csv", headers=web["tokens"]["h-admin"]).status_code == 404
    small = web["settings"].model_copy(update={"imports": web["settings"].imports.model_copy(update={"max_file_bytes": 1024})})
    with TestClient(create_app(small)) as c:
        r = c.post("/imports/households?filename=x.csv", content=data + b"x" * 100_000, headers=web["tokens"]["h-admin"])
        assert r.status_code == 413
    # a refused file ends the job failed, with the reason; a dry run writes nothing
    with TestClient(create_app(web["settings"])) as c:
        admin = web["tokens"]["h-admin"]
        r = c.post(
            "/imports/households?filename=bad.csv", content="户编号,姓名\n".encode() + b"\xff\xfe\x00\x81\n", headers=admin
        )
        job = wait_done(c, r.json()["id"], admin)
        assert job["state"] == "failed" and "neither UTF-8 nor GB18030" in job["error"]
        r = c.post("/imports/households?filename=x.csv&dryRun=true", content=data, headers=admin)
        job = wait_done(c, r.json()["id"], admin)
        assert (job["state"], job["dryRun"], job["written"], job["households"]["inserted"]) == ("done", True, False, 1)
    assert await count(web["eng"], "SELECT count(*) FROM household") == households
    Path(tmp_path / "x.csv").unlink()


async def test_incomes_over_http(web, tmp_path):  # type: ignore[no-untyped-def]
    from tests.test_household_import import write_incomes

    admin = web["tokens"]["h-admin"]
    households = write_csv(tmp_path / "h.csv", family("H-INC", 2, 940)).read_bytes()
    incomes = write_incomes(
        tmp_path / "i.csv", [["H-INC", "2023", "30000.00", "2", ""], ["H-INC", "2023", "1", "", ""]]
    ).read_bytes()
    query = JOB.replace("problemCount", "problemCount records { inserted updated unchanged rejected }")
    with TestClient(create_app(web["settings"])) as c:
        job = wait_done(c, c.post("/imports/households?filename=h.csv", content=households, headers=admin).json()["id"], admin)
        assert job["written"]
        r = c.post("/imports/incomes?filename=i.csv&validOnly=true", content=incomes, headers=admin)
        assert r.status_code == 202
        job_id = r.json()["id"]
        wait_done(c, job_id, admin)
        job = c.post("/graphql", json={"query": query, "variables": {"id": job_id}}, headers=admin).json()["data"]["importJob"]
    assert (job["kind"], job["state"], job["written"], job["households"]) == ("incomes", "done", True, None)
    assert job["records"] == {"inserted": 1, "updated": 0, "unchanged": 0, "rejected": 1}
    assert [(p["row"], p["column"]) for p in job["problems"]] == [(3, "年份 year")]
    assert await count(web["eng"], "SELECT count(*) FROM household_income hi JOIN household h ON h.id = hi.household_id "
                       "WHERE h.code = 'H-INC'") == 1  # fmt: skip


async def test_employments_over_http(web, tmp_path):  # type: ignore[no-untyped-def]
    from tests.test_household_import import write_employments

    admin = web["tokens"]["h-admin"]
    people = family("H-EMP", 1, 950)
    households = write_csv(tmp_path / "h.csv", people).read_bytes()
    spells = write_employments(
        tmp_path / "e.csv", [[people[0]["id_number"], "公益性岗位", "2024-01-01", "", "是", "", "村保洁", "", "1000"]]
    )
    query = JOB.replace("problemCount", "problemCount records { inserted updated unchanged rejected }")
    with TestClient(create_app(web["settings"])) as c:
        assert wait_done(c, c.post("/imports/households?filename=h.csv", content=households, headers=admin).json()["id"], admin)[
            "written"
        ]
        r = c.post("/imports/employments", files={"file": ("就业.csv", spells.read_bytes(), "text/csv")}, headers=admin)
        assert r.status_code == 202
        wait_done(c, r.json()["id"], admin)
        job = c.post("/graphql", json={"query": query, "variables": {"id": r.json()["id"]}}, headers=admin).json()["data"][
            "importJob"
        ]
    assert (job["kind"], job["state"], job["written"], job["fileName"]) == ("employments", "done", True, "就业.csv")
    assert job["records"] == {"inserted": 1, "updated": 0, "unchanged": 0, "rejected": 0}


async def test_templates_download_without_a_token(web, tmp_path):  # type: ignore[no-untyped-def]
    import openpyxl

    from resolvers.household_import import COLUMNS
    from resolvers.income_import import INCOME_COLUMNS

    with TestClient(create_app(web["settings"])) as c:
        r = c.get("/imports/templates/households.csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert next(csv.reader(io.StringIO(r.content.decode("utf-8-sig")))) == [col.header for col in COLUMNS]
        r = c.get("/imports/templates/incomes.xlsx")
        assert r.status_code == 200
        (tmp_path / "t.xlsx").write_bytes(r.content)
        sheet = openpyxl.load_workbook(tmp_path / "t.xlsx").worksheets[0]
        assert [cell.value for cell in sheet[1]] == [col.header for col in INCOME_COLUMNS]
        assert c.get("/imports/templates/ledgers.csv").status_code == 404
        assert c.get("/imports/templates/households.xls").status_code == 404
        # `anju import template KIND` writes the very file the endpoint serves, for every kind
        for kind in ("households", "incomes", "employments", "linkages", "sites", "facilities"):
            out = tmp_path / f"{kind}.csv"
            run = CliRunner().invoke(cli.app, ["import", "template", kind, "--output", str(out)])
            assert run.exit_code == 0, run.output
            assert out.read_bytes() == c.get(f"/imports/templates/{kind}.csv").content, kind
        refused = CliRunner().invoke(cli.app, ["import", "template", "ledgers"])
        assert refused.exit_code == 1 and "expected one of households" in refused.output
