"""Errors of values typed inline in a document name their argument, as variables' errors name the variable.

``Argument 'asOf' has invalid value: …`` (``at 'asOf'`` inside an input object).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, GraphQLInputType, ValueNode, VisitorAction
from graphql.language.visitor import SKIP
from graphql.utilities.validate_input_value import validate_input_literal
from graphql.validation import ValuesOfCorrectTypeRule
from strawberry.extensions import SchemaExtension
from typing_extensions import override

from schema.scalars import ScalarInputError

UNREADABLE = "the value cannot be read (too large or malformed)"


class NamedValuesOfCorrectTypeRule(ValuesOfCorrectTypeRule):
    """graphql-core's ValuesOfCorrectTypeRule.

    Except that a literal a scalar refused (its parser raised) is reported naming the argument and the path inside it, with the
    scalar's own message (``ScalarInputError``) or ``UNREADABLE`` (another exception, e.g. an Int of 5,000 digits).
    """

    argument: str | None = None

    def enter_argument(self, node: Any, *_args: Any) -> None:
        """Visitor hook: remember the argument whose value is being checked."""
        self.argument = node.name.value

    def leave_argument(self, node: Any, *_args: Any) -> None:
        """Visitor hook: the argument's value is checked."""
        self.argument = None

    @override
    def is_valid_value_node(self, node: ValueNode, input_type: GraphQLInputType | None) -> VisitorAction:
        if input_type:

            def on_error(error: GraphQLError, path: list[str | int]) -> None:
                self.report_error(self._named(error, path))

            validate_input_literal(node, input_type, on_error, None, None, self.context.hide_suggestions)
        return SKIP

    def _named(self, error: GraphQLError, path: list[str | int]) -> GraphQLError:
        original = error.original_error
        if original is None or isinstance(original, GraphQLError) or self.argument is None:
            return error
        at = f" at '{'.'.join(str(p) for p in path)}'" if path else ""
        detail = error.message if isinstance(original, ScalarInputError) else UNREADABLE
        return GraphQLError(
            f"Argument '{self.argument}' has invalid value{at}: {detail}",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            extensions={"code": "BAD_USER_INPUT"},
        )


class NamedLiteralErrors(SchemaExtension):
    """Validates with ``NamedValuesOfCorrectTypeRule`` in place of graphql-core's rule."""

    @override
    def on_operation(self) -> Iterator[None]:
        ec = self.execution_context
        ec.validation_rules = tuple(
            NamedValuesOfCorrectTypeRule if r is ValuesOfCorrectTypeRule else r for r in ec.validation_rules
        )
        yield
