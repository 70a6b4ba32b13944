"""Query cost and root-field limits (``QUERY_TOO_COMPLEX`` naming the limit).

Checked after validation and before any resolver runs, with the request's variables.

Cost: every selected field costs 1, and everything below a list field is multiplied by the number
of items it may return — its ``first`` (or ``k``) argument, the default page size for a connection
without ``first``, and ``LIST_ITEMS`` for other lists; a ``featureCollection`` adds its ``limit``
(features). ``households(first: 500) { nodes { members {
name } } }`` costs 1 + 500 × (1 + 1 + 5 × 1) = 3,501.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    VariableNode,
    get_named_type,
)
from graphql.execution import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension
from typing_extensions import override

LIST_ITEMS = 5
"""Items assumed for a list field without a size argument (a household has 5.2 members on average in Yixin)."""
SIZE_ARGS = ("first", "k")


def _arg(field: FieldNode, name: str, variables: dict[str, Any]) -> Any:
    """The argument's value as the query gives it (a literal or a variable.

    A whole float — which graphql-core accepts for Int — as an int), None when absent.
    """
    for a in field.arguments or ():
        if a.name.value == name:
            value = None
            if isinstance(a.value, IntValueNode):
                value = int(a.value.value)
            elif isinstance(a.value, VariableNode):
                value = variables.get(a.value.name.value)
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            return value
    return None


class _Cost:
    def __init__(
        self,
        schema: GraphQLSchema,
        doc: DocumentNode,
        variables: dict[str, Any],
        page_size: int,
        max_page_size: int,
        feature_default: int = 5000,
        feature_max: int = 10_000,
    ) -> None:
        self.schema = schema
        self.feature_default, self.feature_max = feature_default, feature_max
        self.max_page_size = max_page_size
        self.variables = variables
        self.page_size = page_size
        self.fragments = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}

    def fields(self, sel: SelectionSetNode, parent: Any, seen: frozenset[str] = frozenset()) -> Iterator[tuple[FieldNode, Any]]:
        """(field node, parent type) of a selection set, through fragments."""
        for s in sel.selections:
            if isinstance(s, FieldNode):
                yield s, parent
            elif isinstance(s, InlineFragmentNode):
                t = self.schema.get_type(s.type_condition.name.value) if s.type_condition else parent
                yield from self.fields(s.selection_set, t, seen)
            elif isinstance(s, FragmentSpreadNode) and s.name.value not in seen:
                frag = self.fragments.get(s.name.value)
                if frag is not None:
                    yield from self.fields(
                        frag.selection_set, self.schema.get_type(frag.type_condition.name.value), seen | {s.name.value}
                    )

    def multiplier(self, node: FieldNode, field_type: Any, args: dict[str, Any]) -> int:
        t = field_type.of_type if isinstance(field_type, GraphQLNonNull) else field_type
        named = get_named_type(field_type)
        is_connection = getattr(named, "name", "").endswith("Connection")
        if not (isinstance(t, GraphQLList) or is_connection):
            return 1
        for name in SIZE_ARGS:
            value = _arg(node, name, self.variables)
            if value is None and name in args:  # absent: the schema's default is what runs
                value = args[name].default_value
            if isinstance(value, int):  # out-of-range sizes are BAD_USER_INPUT of their field, not a cost
                return min(max(value, 1), self.max_page_size)
        return self.page_size if is_connection else LIST_ITEMS

    def cost(self, sel: SelectionSetNode | None, parent: Any) -> int:
        if sel is None or not isinstance(parent, GraphQLObjectType):
            return 0
        total = 0
        for node, ptype in self.fields(sel, parent):
            field_def = ptype.fields.get(node.name.value) if isinstance(ptype, GraphQLObjectType) else None
            if field_def is None:  # __typename and introspection
                total += 1
                continue
            # a connection's own ``first`` already counts its ``nodes``
            mult = 1 if ptype.name.endswith("Connection") else self.multiplier(node, field_def.type, field_def.args)
            total += 1 + mult * self.cost(node.selection_set, get_named_type(field_def.type))
            if "limit" in field_def.args and get_named_type(field_def.type).name == "JSON":
                # a FeatureCollection: its features count like list items
                limit = _arg(node, "limit", self.variables)
                # (out of range: BAD_USER_INPUT of `limit`, not a cost)
                total += min(limit, self.feature_max) if isinstance(limit, int) and limit > 0 else self.feature_default
        return total


def operation_cost(
    schema: GraphQLSchema,
    doc: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    page_size: int,
    max_page_size: int,
    feature_default: int = 5000,
    feature_max: int = 10_000,
) -> tuple[int, int]:
    """(cost, root fields) of the operation that will run."""
    ops = [d for d in doc.definitions if isinstance(d, OperationDefinitionNode)]
    op = (
        next((o for o in ops if o.name and o.name.value == operation_name), None)
        if operation_name
        else (ops[0] if len(ops) == 1 else None)
    )
    if op is None:
        return 0, 0
    root = schema.mutation_type if op.operation.value == "mutation" else schema.query_type
    values = dict(variables or {})
    for d in op.variable_definitions or ():  # `query($n: Int = 500)`: the default is what runs
        if d.variable.name.value not in values and isinstance(d.default_value, IntValueNode):
            values[d.variable.name.value] = int(d.default_value.value)
    c = _Cost(schema, doc, values, page_size, max_page_size, feature_default, feature_max)
    roots = sum(1 for _ in c.fields(op.selection_set, root))
    return c.cost(op.selection_set, root), roots


class CostLimiter(SchemaExtension):
    """Refuses an operation whose cost or number of root fields is above the settings' limits."""

    def __init__(
        self,
        *,
        max_cost: int,
        max_root_fields: int,
        page_size: int,
        max_page_size: int,
        feature_default: int = 5000,
        feature_max: int = 10_000,
    ) -> None:
        self.max_cost, self.max_root_fields = max_cost, max_root_fields
        self.feature_default, self.feature_max = feature_default, feature_max
        self.page_size, self.max_page_size = page_size, max_page_size

    @override
    def on_execute(self) -> Iterator[None]:
        ec = self.execution_context
        if ec.graphql_document is not None and not ec.result:
            cost, roots = operation_cost(
                ec.schema._schema,
                ec.graphql_document,
                ec.operation_name,
                ec.variables,
                self.page_size,
                self.max_page_size,
                self.feature_default,
                self.feature_max,
            )
            error = None
            if roots > self.max_root_fields:
                error = GraphQLError(
                    f"maxRootFields: the operation selects {roots} root fields; at most {self.max_root_fields} are allowed",
                    extensions={"code": "QUERY_TOO_COMPLEX", "limit": "maxRootFields"},
                )
            elif cost > self.max_cost:
                error = GraphQLError(
                    f"maxCost: the operation may resolve about {cost} fields (each list counts its "
                    f"`first`); at most {self.max_cost} are allowed — ask for smaller pages",
                    extensions={"code": "QUERY_TOO_COMPLEX", "limit": "maxCost"},
                )
            if error is not None:
                ec.result = GraphQLExecutionResult(data=None, errors=[error])
        yield


def limit_rule(rule: type[ASTValidationRule], limit: str, code: str = "QUERY_TOO_COMPLEX") -> type[ASTValidationRule]:
    """``rule`` (a validation rule of a strawberry limiter or graphql-core) whose errors name their limit.

    Every error carries ``extensions.code`` = ``code``; for QUERY_TOO_COMPLEX also ``"limit": limit``, and the message is
    prefixed ``"<limit>: "``. The rule that refused the document says which limit it is; no message text is read.
    (Strawberry's depth and alias rules report their error from ``__init__`` through the context's ``on_error``;
    graphql-core's rules through ``report_error``.)
    """

    def tag(error: GraphQLError) -> GraphQLError:
        if error.extensions and error.extensions.get("code"):
            return error
        too_complex = code == "QUERY_TOO_COMPLEX"
        return GraphQLError(
            f"{limit}: {error.message}" if too_complex else error.message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": code, "limit": limit} if too_complex else {"code": code},
        )

    class Tagged(rule):  # type: ignore[misc, valid-type]
        def __init__(self, context: ValidationContext) -> None:
            report = context.on_error
            context.on_error = lambda error: report(tag(error))  # type: ignore[method-assign]
            try:
                super().__init__(context)
            finally:
                context.on_error = report  # type: ignore[method-assign]

        def report_error(self, error: GraphQLError) -> None:
            super().report_error(tag(error))

    Tagged.__name__ = Tagged.__qualname__ = f"{limit}{rule.__name__}"
    return Tagged
