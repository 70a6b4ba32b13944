"""The GraphQL schema (strawberry): types, inputs, enums, scalars, Context, Query."""

from __future__ import annotations

import contextlib
from typing import Any

import strawberry
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from schema.context import Context
from schema.errors import present, without_suggestion
from schema.limits import CostLimiter, limit_rule
from schema.literals import NamedLiteralErrors
from schema.live import Subscription
from schema.mutations import Mutation
from schema.planner import PlanCache, PlanningExecutor, decode_data
from schema.query import Query
from schema.scalars import SCALAR_MAP

__all__ = ["Context", "build_schema"]


class AnjuSchema(strawberry.Schema):
    """Strawberry's schema whose every result passes through ``schema.errors.present`` once.

    Each error gets its ``extensions.code``, unexpected ones are logged (with traceback) and masked as INTERNAL. Strawberry's own
    logging of every error is off: client errors are not server errors.
    """

    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        return None

    plan_cache: PlanCache
    """Compiled read plans (schema.planner)."""
    plan_dialect: Any
    """The SQL dialect plans are compiled for (asyncpg)."""
    hide_suggestions = False
    """With introspection off, "Did you mean 'household'?" would give the schema away: left out."""

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        """Strawberry's stream (subscriptions over WebSocket), each result's errors presented as ``execute``'s are."""
        source = await super().stream(*args, **kwargs)

        async def presented() -> Any:
            async with contextlib.aclosing(source):
                async for result in source:
                    errors = getattr(result, "errors", None)
                    if errors:
                        result.errors = [present(e) for e in errors]  # type: ignore[union-attr]
                    yield result

        return presented()

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        result = await super().execute(*args, **kwargs)
        context = kwargs.get("context_value")
        if not getattr(context, "raw_json", False):
            result.data = decode_data(result.data)
        if result.errors:
            result.errors = [present(e) for e in result.errors]
            if self.hide_suggestions:
                result.errors = [without_suggestion(e) for e in result.errors]
        return result


class NoteOperation(SchemaExtension):
    """Puts the parsed operation's type and name on the Context (``Context.operation``) for the request log and metrics."""

    def on_operation(self) -> Any:
        """After the operation: its type and name, when the document parsed."""
        yield
        ec = self.execution_context
        context = ec.context
        if not isinstance(context, Context) or ec.graphql_document is None:
            return
        try:
            context.operation = (ec.operation_type.value, ec.operation_name)
        except Exception:  # no such operation in the document: the answer says so
            return


def build_schema(settings: Any) -> strawberry.Schema:
    """The Anju schema with error codes and the limits of ``settings`` (``anju.settings.Settings``).

    Depth, aliases, tokens, cost, root fields (``QUERY_TOO_COMPLEX`` naming the limit), and introspection unless turned off.
    """
    # The limiters' validation rules are built once, so ValidationCache (keyed by document and rules)
    # hits for repeated documents instead of revalidating every request.
    # Each limit's rule tags its own errors (code and limit name), so no message text is read.
    rules: list[type[ASTValidationRule]] = [
        *(limit_rule(r, "maxDepth") for r in QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules),
        *(limit_rule(r, "maxAliases") for r in MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules),
    ]
    if not settings.introspection:
        rules.append(limit_rule(NoSchemaIntrospectionCustomRule, "introspection", code="FORBIDDEN"))
    schema = AnjuSchema(
        execution_context_class=PlanningExecutor,
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALAR_MAP),
        extensions=[
            NoteOperation,
            lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
            lambda: AddValidationRules(rules),
            lambda: NamedLiteralErrors(),
            # repeated documents (map clients poll the same queries) skip parsing and validation
            lambda: ParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=256),
            lambda: CostLimiter(
                max_cost=settings.max_cost,
                max_root_fields=settings.max_root_fields,
                page_size=settings.paging.default_page_size,
                max_page_size=settings.paging.max_page_size,
                feature_default=settings.features.default_limit,
                feature_max=settings.features.max_limit,
            ),
        ],
    )
    schema.hide_suggestions = not settings.introspection
    schema.plan_cache = PlanCache(settings.planner.cache_size)
    schema.plan_dialect = asyncpg_dialect()
    return schema
