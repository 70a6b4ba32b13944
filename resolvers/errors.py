"""Domain errors carrying API.md's ``extensions.code``.

Messages name the field and the accepted form, and never echo SQL, DSNs or personal data.
"""

from __future__ import annotations


class AnjuError(Exception):
    """Base of every error a client may see; ``code`` becomes ``extensions.code``."""

    code = "INTERNAL"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    @property
    def extensions(self) -> dict[str, str]:
        """GraphQL ``extensions``: ``{"code": …}`` plus ``"field"`` when the error names the offending input."""
        ext = {"code": self.code}
        if self.field:
            ext["field"] = self.field
        return ext


class InvalidInput(AnjuError):
    """A bad argument value → ``BAD_USER_INPUT``."""

    code = "BAD_USER_INPUT"


class InvalidGeometry(InvalidInput):
    """A bad GeoJSON geometry argument → ``BAD_USER_INPUT``."""


class NotFound(AnjuError):
    """A referenced record does not exist → ``NOT_FOUND``."""

    code = "NOT_FOUND"


class OutOfScope(AnjuError):
    """The viewer may not see or change this → ``FORBIDDEN``."""

    code = "FORBIDDEN"


class Duplicate(AnjuError):
    """The value must be unique and is recorded already → ``CONFLICT``."""

    code = "CONFLICT"


class StaleVersion(AnjuError):
    """Another edit changed the record first → ``CONFLICT``."""

    code = "CONFLICT"


# SQLSTATE codes (PostgreSQL appendix A) that the API maps to client errors.
QUERY_CANCELED = "57014"
UNIQUE_VIOLATION = "23505"
FOREIGN_KEY_VIOLATION = "23503"
CHECK_VIOLATION = "23514"
NOT_NULL_VIOLATION = "23502"
EXCLUSION_VIOLATION = "23P01"
INTEGRITY_CLASS = "23"
DATA_EXCEPTION_CLASS = "22"
SERIALIZATION_FAILURE = "40001"
DEADLOCK_DETECTED = "40P01"
INSUFFICIENT_PRIVILEGE = "42501"


def _error_field(exc: BaseException | None, field: str) -> str | None:
    """A string field of a database error or of what it wraps (``exc.orig`` and its cause, 4 levels at most)."""
    seen = 0
    while exc is not None and seen < 4:
        value = getattr(exc, field, None)
        if isinstance(value, str):
            return value
        exc = getattr(exc, "orig", None) or exc.__cause__
        seen += 1
    return None


def sqlstate(exc: BaseException | None) -> str | None:
    """The SQLSTATE of a database error.

    Of the asyncpg exception SQLAlchemy's ``DBAPIError`` wraps (``exc.orig`` and its cause), or of an asyncpg ``PostgresError``
    itself. None for other errors.
    """
    return _error_field(exc, "sqlstate")


def constraint_name(exc: BaseException | None) -> str | None:
    """The constraint an integrity error names (asyncpg's ``constraint_name`` field), or None."""
    return _error_field(exc, "constraint_name")


def is_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or went away (refused, reset, timed out connecting, pool exhausted).

    Not a query's own failure (a constraint, a statement timeout): those are the request's.
    """
    from asyncpg import exceptions as pg
    from sqlalchemy import exc as sa

    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, sa.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(
            e,
            OSError
            | TimeoutError
            | sa.TimeoutError
            | pg.ConnectionDoesNotExistError
            | pg.CannotConnectNowError
            | pg.InterfaceError
            | pg.AdminShutdownError
            | pg.CrashShutdownError,
        ):
            return True
        e = getattr(e, "orig", None) or e.__cause__ or e.__context__
    return False
