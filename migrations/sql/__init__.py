"""The database's own logic as it is at head: one idempotent ``.sql`` file per concern.

Functions, triggers and row-level-security policies used to exist only as migration history
(0002, 0003, 0005, 0006, 0007). These files hold them as they are now, so reading what the
database does means reading one file:

- ``household_counts.sql``: ``household.member_count`` / ``labor_force_count`` and
  ``employment.household_id``, kept from member rows;
- ``household_status.sql``: ``household_status``, each household as a step function of the date
  (residence, members present, employment counts), kept from residence, member and employment rows;
  ``household_residence`` rows of a new household; the household size recorded with an income;
- ``located_code.sql``: the admin area whose polygon contains a site, facility or household point;
- ``masks.sql``: the masks of personal data shown to roles without the right to it;
- ``access_policies.sql``: the scoped viewers' roles, grants and row-level-security policies;
- ``coords.sql``: stored WGS84 geometries expressed in GCJ-02 / BD-09 for Chinese basemaps (map layers' answers).
- ``live_events.sql``: the outbox of live updates (subscriptions): triggers, sequencer, retention, read scope.
- ``registry_rules.sql``: rules a single write and a bulk import share (distance to an admin area's polygon,
  household codes and ID numbers recorded outside a viewer's scope).
- ``casework.sql``: grids and monitoring casework (issue #17): the grid worker's role and row scope, the casework
  tables' policies, a case's stage order and ``anju_case_open_on`` (a case open on a date), cases never deleted.
- ``viewer.sql``: ``anju_viewer_holds``, whether a viewer held in memory still describes its user row (migration 0024).
- ``import_stats.sql``: ``anju_analyze_registry``, a big import's ANALYZE of household and member with the owner's
  rights (migration 0027).
- ``planning.sql``: who reads and writes plan targets, training records and follow-up visits (migration 0018).

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

import ast
import hashlib
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path

FILES = (
    "household_counts",
    "household_status",
    "located_code",
    "masks",
    "access_policies",
    "coords",
    "registry_rules",
    "casework",
    "viewer",
    "import_stats",
    "planning",
    "live_events",
)
"""Every file, in the order they are applied (a later file may use an earlier one's functions)."""

VERSIONS = Path(__file__).parent.parent / "versions"

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
    """Run the named files' statements (all of ``FILES`` when none is named) through ``execute``.

    E.g. ``op.execute`` in a migration or ``connection.exec_driver_sql`` in a test.
    """
    for st in statements(*names):
        execute(st)


def last_appliers() -> dict[str, str]:
    """Each file → the last revision whose ``SQL_FILES`` lists it (revision ids sort in order: ``0008`` < ``0010``).

    Read from the text of ``migrations/versions/*.py`` (``ast``), not by importing them.
    """
    found: dict[str, str] = {}
    for path in sorted(VERSIONS.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        revision, files = None, {}
        for node in tree.body:
            target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
            value = getattr(node, "value", None)
            if isinstance(target, ast.Name) and target.id == "revision" and isinstance(value, ast.Constant):
                revision = str(value.value)
            if isinstance(target, ast.Name) and target.id == "SQL_FILES" and isinstance(value, ast.Dict):
                files = {str(k.value): v for k, v in zip(value.keys, value.values, strict=True) if isinstance(k, ast.Constant)}
        for name in files:
            if revision is not None and revision > found.get(name, ""):
                found[name] = revision
    return found


def apply_at(execute: Callable[[str], object], revision: str, *names: str) -> None:
    """What a migration's ``upgrade()`` calls: apply those of ``names`` whose last applier is ``revision``.

    A file holds the logic as it is at head, which may need columns and tables a later revision adds. Upgrading
    through history (an empty database to head), a revision before a file's last applier skips it — the database
    keeps the definitions its own era's revisions wrote — and the last applier applies it once the schema it needs
    exists. On a database already at that revision nothing is skipped that would matter: the later revision runs next.
    """
    latest = last_appliers()
    mine = [n for n in names if latest.get(n) == revision]
    if mine:  # none left to this revision: nothing (``apply`` with no names would apply every file)
        apply(execute, *mine)


def previous(revision: str, name: str) -> str:
    """The text of ``name`` as it was before ``revision`` changed it (``migrations/sql/previous/<revision>/<name>.sql``).

    What that revision's ``downgrade()`` re-applies: the file itself only knows the present.
    """
    return (Path(__file__).parent / "previous" / revision / f"{name}.sql").read_text(encoding="utf-8")
