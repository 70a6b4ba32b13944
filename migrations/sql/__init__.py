"""The database's own logic as it is at head: one idempotent ``.sql`` file per concern.

Functions, triggers and row-level-security policies used to exist only as migration history
(0002, 0003, 0005, 0006, 0007). These files hold them as they are now, so reading what the
database does means reading one file:

- ``household_counts.sql``: ``household.member_count`` / ``labor_force_count`` and
  ``employment.household_id``, kept from member rows;
- ``employment_status.sql``: ``household_employment_status``, each household's employment counts
  as a step function of the date, kept from employment rows;
- ``located_code.sql``: the admin area whose polygon contains a site, facility or household point;
- ``masks.sql``: the masks of personal data shown to roles without the right to it;
- ``access_policies.sql``: the scoped viewers' roles, grants and row-level-security policies.

Every statement can run again without changing anything: ``CREATE OR REPLACE FUNCTION``,
``DROP TRIGGER IF EXISTS`` + ``CREATE TRIGGER``, ``DROP POLICY IF EXISTS`` + ``CREATE POLICY``,
``GRANT``. Migration 0008 applies all of them (a no-op in effect after 0007);
``tests/test_db_logic.py`` checks that a database at head holds exactly what they define.

To change the logic: edit the file, and add a migration that applies it again, recording the file's
``checksum`` (``SQL_FILES = {"<file>": "<checksum>"}`` and ``apply(op.execute, *SQL_FILES)`` in
``upgrade()``), with the previous definitions in its ``downgrade()`` (as text, copied from the file's
previous version: the file itself only knows the present). A file edited without such a migration
would never reach databases already at head; ``tests/test_db_logic.py`` refuses it.

Enum value lists are never written here: a file that needs one reads the PostgreSQL enum type
(``enum_range(NULL::employment_channel)``), whose labels ``tests/test_db_logic.py`` checks against
the Python enums in ``models``, the single definition.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from importlib import resources

FILES = ("household_counts", "employment_status", "located_code", "masks", "access_policies")
"""Every file, in the order they are applied (a later file may use an earlier one's functions)."""

_TOKEN = re.compile(
    r"""
      (?P<line_comment>--[^\n]*)
    | (?P<block_comment>/\*.*?\*/)
    | (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z0-9_]*)?\$)
    | (?P<single>'(?:[^']|'')*')
    | (?P<double>"(?:[^"]|"")*")
    | (?P<semicolon>;)
    """,
    re.VERBOSE | re.DOTALL,
)


def split(script: str) -> list[str]:
    """The statements of a SQL script, without their ``;`` and without the comments between them.

    A ``;`` ends a statement and ``--`` / ``/* */`` start a comment only outside quotes (``'…'``,
    ``"…"``, ``$tag$…$tag$``), so function bodies stay whole, comments inside them included.
    asyncpg prepares each statement: one command per ``execute``.
    """
    statements: list[str] = []
    current: list[str] = []
    start = pos = 0
    while (match := _TOKEN.search(script, pos)) is not None:
        pos = match.end()
        if match.group("dollar"):
            closing = script.find(match.group("dollar"), pos)
            if closing < 0:
                raise ValueError(f"unterminated dollar quote {match.group('dollar')} at offset {match.start()}")
            pos = closing + len(match.group("dollar"))
        elif match.group("line_comment") is not None or match.group("block_comment") is not None:
            current.append(script[start : match.start()])
            start = pos
        elif match.group("semicolon"):
            current.append(script[start : match.start()])
            statements.append("".join(current))
            current, start = [], pos
    current.append(script[start:])
    statements.append("".join(current))
    return [st.strip() for st in statements if st.strip()]


def read(name: str) -> str:
    """The text of ``migrations/sql/<name>.sql`` (package data), ``name`` one of ``FILES``."""
    if name not in FILES:
        raise ValueError(f"SQL file {name!r}: expected one of {', '.join(FILES)}")
    return resources.files(__package__).joinpath(f"{name}.sql").read_text(encoding="utf-8")


def checksum(name: str) -> str:
    """A short SHA-256 of the file's statements (comments between them left out): what the migration
    that last applied it records."""
    return hashlib.sha256("\n;\n".join(split(read(name))).encode("utf-8")).hexdigest()[:16]


def statements(*names: str) -> list[str]:
    """The statements of the named files (all of ``FILES`` when none is named), in order."""
    return [st for name in names or FILES for st in split(read(name))]


def apply(execute: Callable[[str], object], *names: str) -> None:
    """Run the named files' statements (all of ``FILES`` when none is named) through ``execute``,
    e.g. ``op.execute`` in a migration or ``connection.exec_driver_sql`` in a test."""
    for st in statements(*names):
        execute(st)
