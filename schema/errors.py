"""Error presentation: every error a client sees carries ``extensions.code`` (API.md), and no stack trace, SQL or DSN.

Unexpected errors are logged with their traceback and reach the client as ``INTERNAL``.
"""

from __future__ import annotations

import logging
import re

from asyncpg import PostgresError
from graphql import GraphQLError, GraphQLSyntaxError
from sqlalchemy.exc import DBAPIError

from resolvers.errors import QUERY_CANCELED, AnjuError, is_unavailable, sqlstate

log = logging.getLogger("anju.graphql")

INTERNAL_MESSAGE = "Internal server error; the incident was logged."
UNAVAILABLE_MESSAGE = "the database is unavailable; try again shortly"
# graphql-core's token limit (strawberry's MaxTokensLimiter only passes ``max_tokens`` to the parser)
# raises a plain GraphQLSyntaxError: neither a subclass, nor a code, nor a field says which limit it
# was, so this one is recognised by graphql-core's message. Depth, aliases and introspection are
# tagged by the validation rule that refused them (schema.limits.limit_rule).
TOKEN_LIMIT = re.compile(r"^Syntax Error: Document contains more than [0-9]+ tokens\. Parsing aborted\.$")


def _client_error(error: GraphQLError, message: str) -> GraphQLError:
    """A client error without a code.

    QUERY_TOO_COMPLEX (maxTokens) for the parser's token limit, BAD_USER_INPUT otherwise.
    """
    if isinstance(error, GraphQLSyntaxError) and TOKEN_LIMIT.match(message):
        limit: str | None = "maxTokens"
    else:
        limit = None
    ext = {"code": "QUERY_TOO_COMPLEX", "limit": limit} if limit else {"code": "BAD_USER_INPUT"}
    return GraphQLError(
        f"{limit}: {message}" if limit else message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=ext,
    )


def present(error: GraphQLError) -> GraphQLError:
    """The client-facing form of one error."""
    original = error.original_error
    if isinstance(original, AnjuError):
        return GraphQLError(
            original.message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions=original.extensions,
        )
    if original is None:
        # Parse/validation errors: caused by the document or variables the client sent.
        if error.extensions and error.extensions.get("code"):
            return error
        return _client_error(error, error.message)
    if isinstance(original, GraphQLError):
        # Variable coercion ("Int cannot represent non-integer value: '5'"): the client's variables.
        if original.extensions and original.extensions.get("code"):
            return error
        return _client_error(error, error.message)
    if isinstance(original, DBAPIError | PostgresError) and sqlstate(original) == QUERY_CANCELED:  # statement_timeout
        return GraphQLError(
            "the query ran longer than the statement timeout; narrow it (smaller area, radius or geometry) and try again",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "QUERY_TOO_COMPLEX"},
        )
    if error.path is None and isinstance(original, ValueError | OverflowError):
        # Raised while parsing or coercing the request (e.g. an Int literal of thousands of digits).
        return _client_error(error, "the request holds a value that cannot be read (too large or malformed)")
    if is_unavailable(original):  # the database is down or went away: not a bug, no traceback
        log.warning("the database is unavailable at %s (%s)", error.path, type(original).__name__)
        return GraphQLError(
            UNAVAILABLE_MESSAGE,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "INTERNAL", "unavailable": True},
        )
    log.error("unexpected error at %s", error.path, exc_info=original)
    return GraphQLError(
        INTERNAL_MESSAGE,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": "INTERNAL"},
    )


_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def without_suggestion(error: GraphQLError) -> GraphQLError:
    """The error without graphql-core's "Did you mean …?" hint (used when introspection is off)."""
    if "Did you mean" not in error.message:
        return error
    return GraphQLError(
        _SUGGESTION.sub("", error.message),
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=error.extensions,
    )
