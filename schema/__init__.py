"""The GraphQL schema (strawberry): types, inputs, enums, scalars, Context, Query."""

from __future__ import annotations

import strawberry
from strawberry.extensions import QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig

from schema.context import Context
from schema.errors import ErrorCodes
from schema.mutations import Mutation
from schema.query import Query
from schema.scalars import SCALAR_MAP

__all__ = ["Context", "build_schema"]


def build_schema(*, max_depth: int = 12) -> strawberry.Schema:
    """The Anju schema with error codes and a depth limit (``QUERY_TOO_COMPLEX`` beyond it)."""
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALAR_MAP),
        extensions=[ErrorCodes, lambda: QueryDepthLimiter(max_depth=max_depth)],
    )
