"""Error presentation: every error a client sees carries ``extensions.code`` (API.md), and no
stack trace, SQL or DSN. Unexpected errors are logged with their traceback and reach the
client as ``INTERNAL``."""

from __future__ import annotations

import logging
import re

from graphql import GraphQLError

from resolvers.errors import AnjuError

log = logging.getLogger("anju.graphql")

INTERNAL_MESSAGE = "Internal server error; the incident was logged."
# Messages of strawberry's limit extensions (depth, aliases, tokens) → QUERY_TOO_COMPLEX.
LIMIT_MARKERS = {
    "exceeds maximum operation depth": "maxDepth",
    "aliases found. Allowed:": "maxAliases",
    "tokens. Parsing aborted": "maxTokens",
    "introspection": "introspection",
}


def _client_error(error: GraphQLError, message: str) -> GraphQLError:
    limit = next((name for mk, name in LIMIT_MARKERS.items() if mk in message), None)
    if limit == "introspection":
        return GraphQLError(
            message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "FORBIDDEN"},
        )
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
    if "QueryCanceled" in type(getattr(original, "orig", None)).__name__ or "QueryCanceled" in str(
        type(getattr(getattr(original, "orig", None), "__cause__", None))
    ):
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
