"""The GraphQL schema (strawberry): types, inputs, enums, scalars, Context, Query."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from schema.context import Context
from schema.errors import present
from schema.mutations import Mutation
from schema.query import Query
from schema.scalars import SCALAR_MAP

__all__ = ["Context", "build_schema"]


class AnjuSchema(strawberry.Schema):
    """Strawberry's schema whose every result passes through ``schema.errors.present`` once: each error
    gets its ``extensions.code``, unexpected ones are logged (with traceback) and masked as INTERNAL.
    Strawberry's own logging of every error is off: client errors are not server errors."""

    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        return None

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        result = await super().execute(*args, **kwargs)
        if getattr(result, "errors", None):
            result.errors = [present(e) for e in result.errors]
        return result


def build_schema(*, max_depth: int = 12, max_aliases: int = 30, max_tokens: int = 5000) -> strawberry.Schema:
    """The Anju schema with error codes and limits on depth, aliases and tokens (``QUERY_TOO_COMPLEX``)."""
    # The limiters' validation rules are built once, so ValidationCache (keyed by document and rules)
    # hits for repeated documents instead of revalidating every request.
    rules = [*QueryDepthLimiter(max_depth=max_depth).validation_rules,
             *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules]
    return AnjuSchema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALAR_MAP),
        extensions=[lambda: MaxTokensLimiter(max_token_count=max_tokens), lambda: AddValidationRules(rules),
                    # repeated documents (map clients poll the same queries) skip parsing and validation
                    lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256)],
    )
