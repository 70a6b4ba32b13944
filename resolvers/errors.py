"""Domain errors carrying API.md's ``extensions.code``. Messages name the field and the accepted
form, and never echo SQL, DSNs or personal data."""

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
