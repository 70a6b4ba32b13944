"""The documentation stays true to the code: the checked-in SDL (docs/schema.graphql) is the
schema's, every public type, field, argument, enum value and input field has a description, and
the runnable examples of docs/api.md run without errors."""

from __future__ import annotations

import difflib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    introspection_types,
    specified_scalar_types,
)
from sqlalchemy.ext.asyncio import async_sessionmaker

from anju import db
from anju.cli import SDL_FILE, schema_sdl
from anju.seed import load_demo
from schema import Context
from tests.conftest import ADMIN

API_MD = Path(__file__).resolve().parent.parent / "docs" / "api.md"

REGENERATE = "make docs   (or: .venv/bin/anju schema print --output docs/schema.graphql)"


def test_checked_in_sdl_is_the_codes() -> None:
    code = schema_sdl()
    assert SDL_FILE.exists(), f"{SDL_FILE} is missing; create it with: {REGENERATE}"
    checked_in = SDL_FILE.read_text(encoding="utf-8")
    if checked_in != code:
        diff = "".join(
            list(
                difflib.unified_diff(
                    checked_in.splitlines(keepends=True),
                    code.splitlines(keepends=True),
                    "docs/schema.graphql (checked in)",
                    "the schema the code builds",
                )
            )[:60]
        )
        raise AssertionError(f"docs/schema.graphql differs from the code's schema; regenerate it with: {REGENERATE}\n{diff}")


def test_schema_print_command_writes_the_sdl(tmp_path: Path) -> None:
    """`anju schema print --output FILE` (what `make docs` runs) writes exactly the code's SDL."""
    out = tmp_path / "schema.graphql"
    r = subprocess.run(
        [str(Path(sys.executable).parent / "anju"), "schema", "print", "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert out.read_text(encoding="utf-8") == schema_sdl()


def undocumented(schema: GraphQLSchema) -> list[str]:
    """Every public type, field, argument, enum value and input field without a description
    (GraphQL's built-in scalars and introspection types are exempt)."""
    missing: list[str] = []

    def check(what: str, description: str | None) -> None:
        if not (description or "").strip():
            missing.append(what)

    for name, t in sorted(schema.type_map.items()):
        if name.startswith("__") or name in specified_scalar_types or name in introspection_types:
            continue
        check(f"type {name}", t.description)
        if isinstance(t, GraphQLObjectType | GraphQLInterfaceType):
            for fname, f in t.fields.items():
                check(f"field {name}.{fname}", f.description)
                for aname, a in f.args.items():
                    check(f"argument {name}.{fname}({aname})", a.description)
        elif isinstance(t, GraphQLInputObjectType):
            for fname, f in t.fields.items():
                check(f"input field {name}.{fname}", f.description)
        elif isinstance(t, GraphQLEnumType):
            for vname, v in t.values.items():
                check(f"enum value {name}.{vname}", v.description)
    return missing


def test_every_public_schema_element_has_a_description(schema) -> None:  # type: ignore[no-untyped-def]
    missing = undocumented(schema._schema)
    assert not missing, (
        f"{len(missing)} schema elements have no description (add `description=` in schema/*.py; "
        "GraphiQL shows it to users):\n  " + "\n  ".join(missing)
    )


def examples() -> list[str]:
    """The ```graphql blocks of docs/api.md, in document order."""
    return re.findall(r"^```graphql\n(.*?)^```", API_MD.read_text(encoding="utf-8"), flags=re.S | re.M)


def _id(block: str) -> str:
    m = re.match(r"\s*(query|mutation)\s+(\w+)", block)
    return f"{m.group(1)} {m.group(2)}" if m else block.split("\n")[0][:40]


QUERIES = [b for b in examples() if not b.lstrip().startswith("mutation")]
MUTATIONS = [b for b in examples() if b.lstrip().startswith("mutation")]


def test_api_md_has_examples() -> None:
    assert len(QUERIES) >= 15 and len(MUTATIONS) >= 7, (len(QUERIES), len(MUTATIONS))
    names = [_id(b) for b in examples()]
    assert len(set(names)) == len(names), f"examples of docs/api.md should be named operations, each once: {names}"


@pytest.mark.parametrize("document", QUERIES, ids=[_id(b) for b in QUERIES])
async def test_api_md_query_example_runs(gql, document: str) -> None:  # type: ignore[no-untyped-def]
    """Each query example of docs/api.md runs as an admin against the seeded test database."""
    r = await gql(document)
    assert r.errors is None, f"docs/api.md example {_id(document)!r} fails: {[e.formatted for e in r.errors]}"
    assert r.data and all(v is not None for v in r.data.values()), r.data


@pytest.fixture(scope="module")
async def demo_copy(settings):  # type: ignore[no-untyped-def]
    """A throwaway database with a fresh demo seed: the mutation examples change data for good."""
    name = "anju_test_docs"
    await db.ensure_database(settings, name, drop_first=True)
    await db.migrate(settings, name)
    eng = db.create_engine(settings, name)
    await load_demo(eng)
    yield async_sessionmaker(eng, expire_on_commit=False)
    await eng.dispose()


async def test_api_md_mutation_examples_run_in_order(schema, settings, demo_copy) -> None:  # type: ignore[no-untyped-def]
    """The mutation examples run, in document order, as an admin on a freshly seeded copy (the
    versions they carry are those of a fresh demo database)."""
    for document in MUTATIONS:
        r: Any = await schema.execute(document, context_value=Context(sessionmaker=demo_copy, settings=settings, viewer=ADMIN))
        assert r.errors is None, f"docs/api.md example {_id(document)!r} fails: {[e.formatted for e in r.errors]}"
        assert r.data and all(v is not None for v in r.data.values()), r.data
