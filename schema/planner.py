"""Reads planned into SQL: PostgreSQL builds the response's JSON, Python passes the text on (issue #11).

Strawberry stays the schema: parsing, validation, the limits (depth, aliases, cost), permissions
and error codes all run as before. Only the execution of a query's root fields changes:
``PlanningExecutor`` (graphql-core's executor, which strawberry runs) tries to plan each root field
into one SQL expression; the plannable ones go into one ``SELECT`` whose columns are their JSON
texts, run in one transaction with the viewer's scope (row-level security and masking in SQL,
exactly as for the resolvers), and the others run through the resolvers, in the same response.
A planned root field's value is a ``RawJSON``: the HTTP view writes its text into the response
without decoding it (``encode_response``); other callers of ``schema.execute`` get it decoded.

Nothing is planned for partner viewers (their aggregates go through small-cell suppression in
Python) nor for mutations and subscriptions. A root field whose selection holds anything the
planner does not know (a field without a plan below, a geometry in GCJ-02, an argument the
resolver would refuse) is not planned: the resolvers answer it, errors included.

**How a field becomes plannable**: a plain column of a type whose row source is in ``SOURCES``
(the type's ``*_select()``) is planned by name with no code; a field with a resolver needs an
entry in ``FIELDS[type name][field name]``: a function ``(planner, selection, row) -> SQL`` that
builds the same value as its resolver, from the same ``resolvers`` functions. The test suite runs
with ``ANJU_PLANNER__VERIFY=true``: every planned field is also resolved the old way and any
difference fails the test (``MISMATCHES``), so a new entry is checked by every test that reads it.

Plans are cached per (document, operation, variables, today, viewer kind): a repeated read runs
one prepared statement and no planning.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    VariableNode,
    get_argument_values,
    parse,
)
from sqlalchemy import ColumnElement, Integer, and_, case, false, func, literal, null, or_, select
from strawberry.permission import PermissionExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.arguments import convert_arguments

import models as m
from resolvers import admin_areas, coverage, facilities, households, sites
from resolvers import sqljson as sj
from resolvers.access import Role
from resolvers.coords import CoordSys
from resolvers.errors import AnjuError
from resolvers.query import check_year, optional_id, parse_id
from schema.context import Context

log = logging.getLogger("anju.planner")

MISMATCHES: list[str] = []
"""Verification failures (planned JSON ≠ resolvers' JSON) since start; tests assert it stays empty."""
STATS = {"planned": 0, "fallback": 0, "fast": 0}
"""Root fields answered by the planner / by the resolvers (while planning is on), and requests answered by the fast path
(``anju.app.fast_read``, without strawberry), since start."""


MAX_PLANNED_FIELDS = 300
"""Most fields one operation's plan may hold (fragments expanded): a bigger selection goes to the resolvers. Building and
compiling a statement takes about 10 ms per 100 fields of CPU on the event loop; a plan is made once per document,
variables, day and viewer kind (the "everything nested" query of tests/test_planner.py holds about 110)."""
MAX_KEY_CHARS = 64_000
"""Documents plus variables longer than this are not planned (a cached plan keeps both as its key)."""
POISONING_SQLSTATES = ("22", "54", "57014")
"""SQLSTATE classes/codes of a planned statement's failure that will recur (a data exception, a program limit, a
statement timeout): the plan is dropped, so later requests go straight to the resolvers instead of failing twice."""


class RawJSON:
    """The JSON text of one root field, as PostgreSQL built it (never decoded on the HTTP path)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def decode(self) -> Any:
        """The value as Python objects (for callers of ``schema.execute`` that read ``data``)."""
        return json.loads(self.text)


def decode_data(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """``data`` with every planned root field decoded."""
    if not data:
        return data
    return {k: (v.decode() if isinstance(v, RawJSON) else v) for k, v in data.items()}


def encode_response(payload: dict[str, Any]) -> str:
    """A GraphQL response (``{"data", "errors", "extensions"}``) as JSON text, planned fields copied in as text.

    UTF-8 as PostgreSQL writes it (Chinese names as they are, not escaped), whichever path answered.
    """
    data = payload.get("data")
    if not isinstance(data, dict) or not any(isinstance(v, RawJSON) for v in data.values()):
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    parts = []
    for key, value in payload.items():
        if key == "data":
            inner = ",".join(
                json.dumps(k, ensure_ascii=False)
                + ":"
                + (v.text if isinstance(v, RawJSON) else json.dumps(v, ensure_ascii=False, separators=(",", ":")))
                for k, v in data.items()
            )
            parts.append('"data":{' + inner + "}")
        else:
            parts.append(json.dumps(key) + ":" + json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    return "{" + ",".join(parts) + "}"


# --------------------------------------------------------------------------- selections


@dataclass
class Selection:
    """One response key of a selection set: its field, its nodes (merged) and its coerced arguments."""

    key: str
    name: str
    nodes: list[FieldNode]
    definition: GraphQLField | None
    """None for ``__typename``."""

    @property
    def sub(self) -> list[SelectionSetNode]:
        """The selection sets below this field (of every node asking for the key)."""
        return [n.selection_set for n in self.nodes if n.selection_set is not None]


@dataclass
class Planner:
    """Plans one operation's root fields; see the module docstring."""

    schema: Any
    """The strawberry schema (its ``_schema`` is graphql-core's)."""
    fragments: dict[str, Any]
    variables: dict[str, Any]
    context: Context
    info: Any = field(init=False)

    budget: int = MAX_PLANNED_FIELDS
    """Fields this operation may still plan (building the statement costs CPU on the event loop)."""
    hints: dict[str, str] = field(default_factory=dict)
    """Planner settings the statement runs with (``set_config`` before it, for its transaction or read)."""
    known_codes: list[tuple[Any, str]] = field(default_factory=list)
    """(row, admin code) of admin-area rows whose code the query gives as a literal (root ``adminArea(code)``)."""

    def __post_init__(self) -> None:
        # what validators of inputs and page arguments read of ``info``
        self.info = SimpleNamespace(context=self.context)

    def spend(self, n: int = 1) -> None:
        """Count ``n`` more planned fields; Unplannable past ``MAX_PLANNED_FIELDS`` (the resolvers answer big selections)."""
        self.budget -= n
        if self.budget < 0:
            raise sj.Unplannable("too many fields to plan")

    # -- selection sets

    def _included(self, node: Any) -> bool:
        for d in node.directives or ():
            name = d.name.value
            if name not in ("skip", "include"):
                raise sj.Unplannable(f"directive @{name}")
            arg = d.arguments[0].value if d.arguments else None
            if isinstance(arg, BooleanValueNode):
                value = arg.value
            elif isinstance(arg, VariableNode):
                given = self.variables.get(arg.name.value)
                if not isinstance(given, bool):  # null (or absent): the resolvers report it
                    raise sj.Unplannable("directive variable not a boolean")
                value = given
            else:
                raise sj.Unplannable("directive argument")
            if (name == "skip") == value:
                return False
        return True

    def collect(self, type_: GraphQLObjectType, sets: Sequence[SelectionSetNode]) -> list[Selection]:
        """The fields asked of ``type_`` by ``sets`` (fragments expanded, @skip/@include applied), keys in order."""
        out: OrderedDict[str, Selection] = OrderedDict()

        def visit(sel_set: SelectionSetNode) -> None:
            for node in sel_set.selections:
                if not self._included(node):
                    continue
                if isinstance(node, FieldNode):
                    key = node.alias.value if node.alias else node.name.value
                    if key in out:
                        out[key].nodes.append(node)
                    else:
                        name = node.name.value
                        definition = None if name == "__typename" else type_.fields.get(name)
                        if definition is None and name != "__typename":
                            raise sj.Unplannable(f"{type_.name}.{name}")
                        out[key] = Selection(key, name, [node], definition)
                elif isinstance(node, InlineFragmentNode):
                    cond = node.type_condition
                    if cond is not None and cond.name.value != type_.name:
                        raise sj.Unplannable("fragment on another type")
                    visit(node.selection_set)
                elif isinstance(node, FragmentSpreadNode):
                    frag = self.fragments.get(node.name.value)
                    definition = getattr(frag, "definition", frag)
                    if definition is None or definition.type_condition.name.value != type_.name:
                        raise sj.Unplannable("fragment on another type")
                    visit(definition.selection_set)

        for s in sets:
            visit(s)
        return list(out.values())

    def args(self, type_: GraphQLObjectType, sel: Selection) -> dict[str, Any]:
        """The field's arguments converted as strawberry converts them for its resolver (input objects, enums, scalars).

        Raises:
            Unplannable: the arguments cannot be read (the resolvers then report why), or a permission does not hold.
        """
        assert sel.definition is not None
        try:
            raw = get_argument_values(sel.definition, sel.nodes[0], _Vars(self.variables))  # type: ignore[arg-type]
        except Exception as exc:
            raise sj.Unplannable(f"arguments: {exc}") from None
        sfield = sel.definition.extensions.get("strawberry-definition")
        if sfield is None:
            return raw
        kwargs = convert_arguments(
            raw, sfield.arguments, scalar_registry=self.schema.schema_converter.scalar_registry, config=self.schema.config
        )
        for ext in sfield.extensions:
            if isinstance(ext, PermissionExtension):
                for perm in ext.permissions:
                    if not perm.has_permission(None, self.info, **kwargs):
                        raise sj.Unplannable("permission")
            else:
                raise sj.Unplannable(f"field extension {type(ext).__name__}")
        return kwargs

    # -- values

    def object(self, type_: GraphQLObjectType, sets: Sequence[SelectionSetNode], row: Any) -> ColumnElement[Any]:
        """The JSON object of ``type_`` for ``row`` (a row source's columns) with the fields ``sets`` ask for."""
        pairs: list[tuple[str, ColumnElement[Any]]] = []
        plans = FIELDS.get(type_.name, {})
        for sel in self.collect(type_, sets):
            self.spend()
            if sel.definition is None:
                pairs.append((sel.key, sj.constant(type_.name)))
                continue
            plan = plans.get(sel.name)
            if plan is not None:
                pairs.append((sel.key, plan(self, type_, sel, row)))
            else:
                pairs.append((sel.key, self.column(type_, sel, row)))
        return sj.json_object(pairs)

    def column(self, type_: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
        """A plain field: the row column of its Python name, serialized as its GraphQL type."""
        assert sel.definition is not None
        sfield = sel.definition.extensions.get("strawberry-definition")
        if sfield is None or sfield.base_resolver is not None or sfield.extensions:
            raise sj.Unplannable(f"{type_.name}.{sel.name}")
        name = sfield.python_name
        if name not in row.c:
            raise sj.Unplannable(f"{type_.name}.{sel.name}: no column")
        return self.serialize(sel.definition.type, row.c[name])

    def serialize(self, gtype: GraphQLOutputType, value: ColumnElement[Any]) -> ColumnElement[Any]:
        """``value`` in JSON as the GraphQL scalar/enum ``gtype`` serializes it."""
        inner = gtype.of_type if isinstance(gtype, GraphQLNonNull) else gtype
        if isinstance(inner, GraphQLList):
            item = inner.of_type.of_type if isinstance(inner.of_type, GraphQLNonNull) else inner.of_type
            if isinstance(item, GraphQLScalarType) and item.name in ("String", "Int", "Boolean"):
                # text[] / int[] → JSON array; a NULL item in a list of non-null items fails the statement (the
                # resolvers then answer it, with their error), as a non-finite Float does
                return sj.refuse_if(func.array_position(value, null()).isnot(None), value) if item is not inner.of_type else value
            raise sj.Unplannable(f"list of {item}")
        if isinstance(inner, GraphQLEnumType):
            return sj.enum_value(value, enum_members(inner))
        if isinstance(inner, GraphQLScalarType):
            name = inner.name
            if name in ("String", "Int", "Boolean", "Date"):
                return value
            if name == "ID":
                return sj.id_value(value)
            if name == "Decimal":
                return sj.decimal_value(value)
            if name == "Float":
                f = sj.float_value(value)
                return sj.refuse_if(f.in_([sj.constant("Infinity"), sj.constant("-Infinity"), sj.constant("NaN")]), f)
            if name == "GeoJSON":
                return sj.json_text(value)
        raise sj.Unplannable(f"type {gtype}")

    def sub_type(self, sel: Selection) -> GraphQLObjectType:
        """The object type a field returns (lists and non-null unwrapped)."""
        assert sel.definition is not None
        t: Any = sel.definition.type
        while isinstance(t, GraphQLNonNull | GraphQLList):
            t = t.of_type
        if not isinstance(t, GraphQLObjectType):
            raise sj.Unplannable(f"{sel.name}: abstract type")
        return t

    def one(self, sel: Selection, source: Any, outer: Any = None) -> ColumnElement[Any]:
        """A nullable object field: the object of the single row ``source`` selects (conditions on ``outer``), or null."""
        t = self.sub_type(sel)
        return sj.one_object(source, lambda r: self.object(t, sel.sub, r), outer)

    def many(self, sel: Selection, source: Any, order: Sequence[str], outer: Any = None) -> ColumnElement[Any]:
        """A list field: the objects of ``source``'s rows (conditions on ``outer``), ordered by ``order``."""
        t = self.sub_type(sel)
        return sj.object_list(source, order, lambda r: self.object(t, sel.sub, r), outer)

    def page(
        self, type_: GraphQLObjectType, sel: Selection, base: Any, key: str, kind: str, args: Any, outer: Any = None
    ) -> ColumnElement[Any]:
        """A connection field: one keyset page of ``base`` by ``key`` with the members asked for."""
        conn = self.sub_type(sel)
        node_type: Any = conn.fields["nodes"].type
        while isinstance(node_type, GraphQLNonNull | GraphQLList):
            node_type = node_type.of_type
        members: list[sj.ConnectionMember] = []
        pi_name = "PageInfo"
        for s in self.collect(conn, sel.sub):
            self.spend()
            if s.name == "nodes":
                sets = s.sub  # this alias's own selection (another alias of nodes has its own)
                members.append(sj.ConnectionMember(s.key, "nodes", build=lambda r, sets=sets: self.object(node_type, sets, r)))
            elif s.name == "totalCount":
                members.append(sj.ConnectionMember(s.key, "totalCount"))
            elif s.name == "pageInfo":
                pi_type = self.sub_type(s)
                pi_name = pi_type.name
                info = tuple((p.key, p.name if p.definition is not None else "__typename") for p in self.collect(pi_type, s.sub))
                members.append(sj.ConnectionMember(s.key, "pageInfo", page_info=info))
            elif s.name == "__typename":
                members.append(sj.ConnectionMember(s.key, "__typename", type_name=conn.name))
            else:
                raise sj.Unplannable(f"{conn.name}.{s.name}")
        return sj.connection(base, key, args, kind, members, outer, pi_name)

    def page_args(self, args: dict[str, Any], kind: str, numeric: bool = True) -> Any:
        """``first``/``after`` validated as the resolvers validate them (``schema.types.connection_args``)."""
        from schema.types import connection_args

        try:
            return connection_args(self.info, args.get("first"), args.get("after"), kind=kind, numeric=numeric)
        except Exception:
            raise sj.Unplannable("page arguments refused") from None

    def year(self, args: dict[str, Any], name: str = "year") -> int | None:
        """A ``year`` argument checked as the resolvers check it (None stays None)."""
        value = args.get(name)
        if value is None:
            return None
        try:
            return check_year(value)
        except Exception:
            raise sj.Unplannable("year") from None

    def as_of(self, args: dict[str, Any], name: str = "as_of") -> dt.date:
        """The field's ``asOf`` (default today, Asia/Shanghai), checked as the resolvers check it."""
        try:
            return self.context.as_of(args.get(name))
        except Exception:
            raise sj.Unplannable("asOf") from None


class _Vars:
    """graphql-core's ``VariableValues`` shape over a plain coerced dict."""

    def __init__(self, coerced: dict[str, Any]) -> None:
        self.coerced = coerced
        self.sources = {k: SimpleNamespace(signature=None, value=v) for k, v in coerced.items()}


# --------------------------------------------------------------------------- plans per field

FieldPlan = Callable[[Planner, GraphQLObjectType, Selection, Any], ColumnElement[Any]]
H, M, S, F, A = m.Household, m.Member, m.RelocationSite, m.Facility, m.AdminArea
ST = m.HouseholdStatus

SOURCES: dict[str, Callable[[], Any]] = {
    "Household": households.household_select,
    "Member": households.member_select,
    "RelocationSite": sites.site_select,
    "Facility": facilities.facility_select,
    "AdminArea": admin_areas.admin_area_select,
}
"""Types whose plain fields are columns of the same name in their row source (the resolvers' ``*_select()``)."""


def _geometry(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    """A geometry field (``coordSys`` WGS84 only: other systems are converted in Python)."""
    if p.args(t, sel).get("coord_sys", CoordSys.WGS84) is not CoordSys.WGS84:
        raise sj.Unplannable("coordSys")
    return sj.json_text(row.c[sel.name])


def _area(column: str) -> FieldPlan:
    def plan(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
        p.args(t, sel)
        return p.one(sel, admin_areas.admin_area_select().where(A.code == row.c[column]), row)

    return plan


def _site_of(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    p.args(t, sel)
    return p.one(sel, sites.site_select().where(S.id == row.c.site_id), row)


def _status(column: str, default: Any) -> Callable[[Planner, dict[str, Any], Any], ColumnElement[Any]]:
    """A household's ``household_status`` value on the field's ``asOf`` (the segment holding it)."""

    def value(p: Planner, args: dict[str, Any], row: Any) -> ColumnElement[Any]:
        on = p.as_of(args)
        q = households.status_on(row.c.id, on)
        return func.coalesce(q.with_only_columns(q.selected_columns[column]).scalar_subquery(), default)

    return value


def _size(column: str, today_column: str) -> FieldPlan:
    status = _status(column, literal(0))

    def plan(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
        args = p.args(t, sel)
        if args.get("as_of") is None:  # today: the trigger-kept counts, as the resolver reads them
            return row.c[today_column]
        return status(p, args, row)

    return plan


def _stably_employed(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    return _status("stably_employed", literal(0))(p, p.args(t, sel), row)


def _zero_employment(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    on = p.as_of(p.args(t, sel))
    q = households.status_on(row.c.id, on)
    zero = q.with_only_columns(and_(q.selected_columns.labor_force > 0, q.selected_columns.employed == 0)).scalar_subquery()
    return func.coalesce(zero, literal(False))


def _members(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    args = p.args(t, sel)
    q = households.member_select().where(M.household_id == row.c.id)
    if not args.get("include_left"):
        today = p.context.today()
        q = q.where(or_(M.left_on.is_(None), M.left_on > today))
    return p.many(sel, q, ["id"], row)


def _facilities_of_site(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    p.args(t, sel)
    return p.many(sel, facilities.facility_select().where(F.site_id == row.c.id), ["id"], row)


def _site_stat(column: str) -> FieldPlan:
    def plan(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
        p.args(t, sel)
        q = sites.site_stats_select().where(H.site_id == row.c.id)
        return func.coalesce(q.with_only_columns(q.selected_columns[column]).scalar_subquery(), literal(0))

    return plan


def _parent(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    return _area("parent_code")(p, t, sel, row)


def _by_id(source: Callable[[], Any], column: Any) -> FieldPlan:
    """A root ``x(id)``: null for an id that names no row, as the resolver's ``parse_id``."""

    def plan(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
        key = parse_id(p.args(t, sel)["id"])
        if key is None:
            return null()
        return p.one(sel, source().where(column == key))

    return plan


def _admin_area(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    code = p.args(t, sel)["code"]
    if not (code.isdigit() and len(code) <= 12):
        return null()
    area = p.sub_type(sel)

    def build(r: Any) -> ColumnElement[Any]:
        p.known_codes.append((r, code))  # its coverage can use the resolvers' own predicate on the literal code
        return p.object(area, sel.sub, r)

    return sj.one_object(admin_areas.admin_area_select().where(A.code == code), build)


def _list(kind: str, filtered: Callable[[Any], Any], key: str = "id") -> FieldPlan:
    """A root connection ``xs(filter, first, after)`` over ``filtered(resolver filter or None)``."""

    def plan(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
        args = p.args(t, sel)
        page = p.page_args(args, kind)
        try:
            f = args.get("filter")
            base = filtered(f.to_resolver(p.info) if f else None)
        except Exception:
            raise sj.Unplannable("arguments refused") from None
        return p.page(t, sel, base, key, kind, page)

    return plan


def _admin_areas(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    args = p.args(t, sel)
    page = p.page_args(args, "admin_area", numeric=False)
    try:
        base = admin_areas.filtered_admin_areas(args.get("level"), args.get("parent_code"))
    except Exception:
        raise sj.Unplannable("arguments refused") from None
    return p.page(t, sel, base, "code", "admin_area", page)


def _children(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    page = p.page_args(p.args(t, sel), "admin_area", numeric=False)
    base = admin_areas.admin_area_select().where(A.parent_code == row.c.code)
    return p.page(t, sel, base, "code", "admin_area", page, row)


def _site_households(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    page = p.page_args(p.args(t, sel), "household")
    base = households.household_select().where(H.site_id == row.c.id)
    return p.page(t, sel, base, "id", "household", page, row)


def _zero_employment_households(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    args = p.args(t, sel)
    page = p.page_args(args, "household")
    try:
        sid = optional_id(args.get("site_id"), "siteId")
        base = coverage.zero_employment_select(p.as_of(args), args.get("area_code"), sid)
    except sj.Unplannable:
        raise
    except Exception:
        raise sj.Unplannable("arguments refused") from None
    return p.page(t, sel, base, "id", "household", page)


E, L, HI = m.Employment, m.IncomeLinkage, m.HouseholdIncome


def _household_employments(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    on = p.as_of(p.args(t, sel))
    q = households.employment_select().where(E.household_id == row.c.id, households.active_on(on))
    return p.many(sel, q, ["member_id", "start_on", "id"], row)


def _member_employments(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    args = p.args(t, sel)
    q = households.employment_select().where(E.member_id == row.c.id)
    if args.get("as_of") is not None:
        q = q.where(households.active_on(p.as_of(args)))
    return p.many(sel, q, ["start_on", "id"], row)


def _income_linkages(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    year = p.year(p.args(t, sel))
    q = households.income_linkage_select().where(L.household_id == row.c.id)
    if year is not None:
        q = q.where(L.year == year)
    return p.many(sel, q, ["year", "id"], row)


def _net_income(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    year = p.year(p.args(t, sel))
    value = select(HI.net_income).where(HI.household_id == row.c.id, HI.year == year).scalar_subquery()
    return sj.decimal_value(value)


def _linked_income(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    """``Household.linkedIncome(year)``: resolvers.coverage.linked_income_by_household_ids in SQL."""
    year = p.year(p.args(t, sel))
    mine = and_(L.household_id == row.c.id, L.year == year)
    total = select(sj.yuan(func.coalesce(func.sum(L.amount), 0))).where(mine).scalar_subquery()
    li = p.sub_type(sel)
    pairs: list[tuple[str, ColumnElement[Any]]] = []
    for s in p.collect(li, sel.sub):
        if s.definition is None:
            pairs.append((s.key, sj.constant(li.name)))
        elif s.name == "total":
            pairs.append((s.key, sj.decimal_value(total)))
        elif s.name == "perCapita":
            size = func.anju_year_size(row.c.id, year)
            per = sj.decimal_value(sj.yuan(total / func.nullif(size, 0)))
            pairs.append((s.key, per))
        elif s.name == "byMechanism":
            grouped = (
                select(L.mechanism, sj.yuan(func.sum(L.amount)).label("amount"), literal(1, Integer).label("households"))
                .where(mine)
                .group_by(L.mechanism)
            )
            pairs.append((s.key, p.many(s, grouped, ["mechanism"], row)))
        else:
            raise sj.Unplannable(f"LinkedIncome.{s.name}")
    return sj.json_object(pairs)


def _employment_member(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    p.args(t, sel)
    return p.one(sel, households.member_select().where(M.id == row.c.member_id), row)


def _facility_of(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    p.args(t, sel)
    return p.one(sel, facilities.facility_select().where(F.id == row.c.facility_id), row)


def _linkage_household(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    p.args(t, sel)
    return p.one(sel, households.household_select().where(H.id == row.c.household_id), row)


def _feature_collection(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    """``Query.featureCollection``: the layer registry's statement (its JSON text, passed through as it is)."""
    from schema.query import feature_collection_statement

    args = p.args(t, sel)
    try:
        q = feature_collection_statement(
            p.info,
            args["layer"],
            args.get("bbox"),
            args.get("zoom"),
            args.get("filter"),
            args.get("limit"),
            args.get("coord_sys", CoordSys.WGS84),
        )
    except Exception:
        raise sj.Unplannable("arguments refused") from None
    return sj.json_text(q.scalar_subquery())


def _coverage(p: Planner, sel: Selection, where: Sequence[ColumnElement[bool]], as_of: dt.date) -> ColumnElement[Any]:
    """An ``EmploymentCoverage`` object: employment_coverage.sql's figures, only those asked, in one aggregate query.

    Over the household_status segments valid on ``as_of`` that ``where`` picks (resolvers/sql/employment_coverage.sql).
    """
    t = p.sub_type(sel)
    lf = ST.labor_force > 0
    covered = func.count().filter(and_(lf, ST.stably_employed > 0))
    with_lf = func.count().filter(lf)
    figures: dict[str, ColumnElement[Any]] = {
        "households": func.count(),
        "householdsWithLaborForce": with_lf,
        "householdsCovered": covered,
        "zeroEmploymentHouseholds": func.count().filter(and_(lf, ST.employed == 0)),
        "employedPersons": func.coalesce(func.sum(ST.employed), 0),
        "stablyEmployedPersons": func.coalesce(func.sum(ST.stably_employed), 0),
        "coverageRate": sj.float_value(sj.float_value(covered) / func.nullif(sj.float_value(with_lf), 0)),
        "suppressed": false(),  # never for the viewers the planner serves (partners go to the resolvers)
    }
    pairs: list[tuple[str, ColumnElement[Any]]] = []
    for f in p.collect(t, sel.sub):
        p.spend()
        if f.definition is None:
            pairs.append((f.key, sj.constant(t.name)))
        elif f.name == "byChannel":
            pairs.append((f.key, _by_channel(p, f)))
        elif f.name in figures:
            pairs.append((f.key, figures[f.name]))
        else:
            raise sj.Unplannable(f"{t.name}.{f.name}")
    segment = and_(ST.valid_from <= as_of, ST.valid_to > as_of)
    return select(sj.json_object(pairs)).where(*where, segment).scalar_subquery()


def _by_channel(p: Planner, sel: Selection) -> ColumnElement[Any]:
    """``byChannel``: per channel with employed persons, in the enum's order (``resolvers.coverage._channels``)."""
    t = p.sub_type(sel)
    channel_type: Any = t.fields["channel"].type
    names = {stored: name for name, stored in enum_members(channel_type)}
    items = []
    for ch in m.EmploymentChannel:
        persons = func.coalesce(func.sum(getattr(ST, ch.value)), 0)
        pairs: list[tuple[str, ColumnElement[Any]]] = []
        for f in p.collect(t, sel.sub):
            p.spend()
            if f.definition is None:
                pairs.append((f.key, sj.constant(t.name)))
            elif f.name == "channel":
                pairs.append((f.key, sj.constant(names[ch.value])))
            elif f.name == "count":
                pairs.append((f.key, persons))
            else:
                raise sj.Unplannable(f"{t.name}.{f.name}")
        items.append(sj.when_positive(persons, sj.json_object(pairs)))
    return sj.json_array_of_present(items)


def enum_members(gtype: Any) -> list[tuple[str, Any]]:
    """(GraphQL name, stored value) of each member of a strawberry enum type (non-null unwrapped).

    Raises:
        Unplannable: not an enum strawberry defined.
    """
    inner = gtype.of_type if isinstance(gtype, GraphQLNonNull) else gtype
    definition = inner.extensions.get("strawberry-definition") if isinstance(inner, GraphQLEnumType) else None
    if definition is None:
        raise sj.Unplannable(f"enum {gtype}")
    return [(v.name, v.value) for v in definition.values]


def _area_coverage(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    """``AdminArea.employmentCoverage(asOf)``: every household under the area (``employment_coverage_by_area_codes``).

    For a code the query gives (root ``adminArea(code)``) the resolvers' own predicate and planner settings
    (``resolvers.coverage.area_scope``); for areas of a list, the code's prefix by range on the indexed county code.
    """
    as_of = p.as_of(p.args(t, sel))
    code = next((c for r, c in p.known_codes if r is row), None)
    if code is not None:
        where, hints = coverage.area_scope(ST, code)
        p.hints.update(hints)
        return _coverage(p, sel, where, as_of)
    c = row.c.code
    prefix = case((c.like("__0000"), func.left(c, 2)), (c.like("____00"), func.left(c, 4)), else_=c)
    county = func.left(prefix, 6)
    where = [
        ST.county_code >= county,
        ST.county_code < county.op("||")("z"),
        func.left(ST.admin_code, func.length(prefix)) == prefix,
    ]
    return _coverage(p, sel, where, as_of)


def _site_coverage(p: Planner, t: GraphQLObjectType, sel: Selection, row: Any) -> ColumnElement[Any]:
    """``RelocationSite.employmentCoverage(asOf)``: the households living at the site (``employment_coverage_by_site_ids``)."""
    return _coverage(p, sel, [ST.site_id == row.c.id], p.as_of(p.args(t, sel)))


FIELDS: dict[str, dict[str, FieldPlan]] = {
    "Query": {
        "featureCollection": _feature_collection,
        "household": _by_id(households.household_select, H.id),
        "households": _list("household", households.filtered_households),
        "relocationSite": _by_id(sites.site_select, S.id),
        "relocationSites": _list("relocation_site", sites.filtered_sites),
        "facility": _by_id(facilities.facility_select, F.id),
        "facilities": _list("facility", facilities.filtered_facilities),
        "adminArea": _admin_area,
        "adminAreas": _admin_areas,
        "zeroEmploymentHouseholds": _zero_employment_households,
    },
    "Household": {
        "dwelling": _geometry,
        "size": _size("members", "member_count"),
        "laborForceCount": _size("labor_force", "labor_force_count"),
        "stablyEmployedCount": _stably_employed,
        "isZeroEmployment": _zero_employment,
        "members": _members,
        "site": _site_of,
        "adminArea": _area("admin_code"),
        "originArea": _area("origin_admin_code"),
        "employments": _household_employments,
        "incomeLinkages": _income_linkages,
        "netIncome": _net_income,
        "linkedIncome": _linked_income,
    },
    "Member": {"employments": _member_employments, "household": _linkage_household},
    "Employment": {"workplace": _geometry, "member": _employment_member, "facility": _facility_of},
    "IncomeLinkage": {"household": _linkage_household, "facility": _facility_of},
    "RelocationSite": {
        "location": _geometry,
        "boundary": _geometry,
        "adminArea": _area("admin_code"),
        "facilities": _facilities_of_site,
        "householdCount": _site_stat("households"),
        "population": _site_stat("population"),
        "households": _site_households,
        "employmentCoverage": _site_coverage,
    },
    "Facility": {
        "location": _geometry,
        "footprint": _geometry,
        "adminArea": _area("admin_code"),
        "site": _site_of,
    },
    "AdminArea": {"geometry": _geometry, "parent": _parent, "children": _children, "employmentCoverage": _area_coverage},
}
"""Fields with a resolver that the planner builds in SQL, per GraphQL type (see the module docstring)."""


# --------------------------------------------------------------------------- execution


@dataclass
class _Cached:
    keys: list[str]
    """Response keys of the planned root fields, in the plan's column order."""
    plan: sj.CompiledPlan | None
    complete: bool = False
    """Every root field of the operation is planned: the HTTP view may answer it without strawberry (``fast_read``)."""

    def drop(self) -> None:
        """Forget the statement (it failed in a way that recurs): the resolvers answer this request's like from now on."""
        self.keys, self.plan, self.complete = [], None, False


def will_fail_again(exc: BaseException) -> bool:
    """Whether a planned statement's failure is the statement's own (``POISONING_SQLSTATES``), not the connection's."""
    state = getattr(exc, "sqlstate", None)
    return isinstance(state, str) and state.startswith(POISONING_SQLSTATES)


def plan_key(query: str, operation_name: str | None, variables: Any, today: dt.date, viewer: Any) -> tuple[Any, ...] | None:
    """The plan cache's key of a request: document text, operation name, variables as sent, today, viewer kind.

    None when the variables are not JSON (nothing is cached). Validation, the cost limit and every planning decision
    depend on nothing else, so a hit stands for a request that passed them before.
    """
    try:
        values = json.dumps(variables or {}, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    return (query, operation_name, values, today, viewer.role, viewer.area_codes)


class PlanCache:
    """Compiled plans by (document, operation, variables, today, viewer kind); least recently used dropped."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[Any, _Cached] = OrderedDict()

    def get(self, key: Any) -> _Cached | None:
        """The plan cached under ``key`` (now the most recently used), or None."""
        hit = self.entries.get(key)
        if hit is not None:
            self.entries.move_to_end(key)
        return hit

    def put(self, key: Any, value: _Cached) -> None:
        """Keep ``value`` under ``key``, dropping the least recently used plan beyond ``size``."""
        self.entries[key] = value
        if len(self.entries) > self.size:
            self.entries.popitem(last=False)


class PlanningExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor with the root fields of queries planned into SQL where possible."""

    def execute_root_grouped_field_set(
        self, root_type: Any, root_value: Any, grouped_field_set: Any, serially: bool, position_context: Any
    ) -> Any:
        """Queries: planned root fields through SQL, the rest through the resolvers; mutations unchanged."""
        ctx = self.context_value
        settings = getattr(getattr(ctx, "settings", None), "planner", None)
        if (
            serially
            or not isinstance(ctx, Context)
            or settings is None
            or not settings.enabled
            or ctx.viewer.role is Role.PARTNER
            or self.operation.operation.value != "query"
        ):
            return super().execute_root_grouped_field_set(root_type, root_value, grouped_field_set, serially, position_context)
        return self._planned(root_type, root_value, grouped_field_set, position_context, settings)

    async def _planned(self, root_type: Any, root_value: Any, grouped: Any, position_context: Any, settings: Any) -> Any:
        ctx: Context = self.context_value
        schema = self.schema._strawberry_schema  # type: ignore[attr-defined]
        cache: PlanCache = schema.plan_cache
        source = self.operation.loc.source.body if self.operation.loc else None
        sent = {k: s.value for k, s in self.variable_values.sources.items() if s.value is not Undefined}
        today = ctx.today()
        names: list[str | None] = [self.operation.name.value if self.operation.name else None]
        keys = [plan_key(source, n, sent, today, ctx.viewer) if source is not None else None for n in names]
        if keys[0] is None or len(source or "") + len(keys[0][2]) > MAX_KEY_CHARS:
            return await self._resolved(root_type, root_value, grouped, position_context)
        cached = cache.get(keys[0])
        if cached is None:
            cached = await asyncio.to_thread(self._plan, root_type, grouped, schema)  # compiling takes CPU: off the loop
            if source is not None and names[0] is not None and _single_operation(source):
                keys.append(plan_key(source, None, sent, today, ctx.viewer))  # requests may name the only operation or not
            for k in keys:
                if k is not None:
                    cache.put(k, cached)
        planned = {k: grouped[k] for k in cached.keys}
        rest = {k: v for k, v in grouped.items() if k not in planned}
        texts: Sequence[str | None] = ()
        if cached.plan is not None:
            try:
                async with ctx.sessionmaker() as s:
                    texts = await sj.run_plan(s, cached.plan)
            except Exception as exc:  # the resolvers answer instead, with their own error handling
                log.warning("planned read failed (%s); answering through the resolvers", type(exc).__name__)
                rest, planned, texts = dict(grouped), {}, ()
                if will_fail_again(exc):
                    cached.drop()
        STATS["planned"] += len(planned)
        STATS["fallback"] += len(rest)
        results: dict[str, Any] = {}
        if rest:
            resolved = super().execute_root_grouped_field_set(root_type, root_value, rest, False, position_context)
            results = cast(dict[str, Any], await resolved if self.is_awaitable(resolved) else resolved)
        raw = {k: RawJSON(t if t is not None else "null") for k, t in zip(planned, texts, strict=True)}
        if settings.verify and raw:
            await self._verify(root_type, root_value, planned, position_context, raw)
        return {k: raw[k] if k in raw else results.get(k) for k in grouped if k in raw or k in results}

    async def _resolved(self, root_type: Any, root_value: Any, grouped: Any, position_context: Any) -> dict[str, Any]:
        """Every root field through the resolvers (nothing planned)."""
        STATS["fallback"] += len(grouped)
        resolved = super().execute_root_grouped_field_set(root_type, root_value, grouped, False, position_context)
        return cast(dict[str, Any], await resolved if self.is_awaitable(resolved) else resolved)

    def _plan(self, root_type: Any, grouped: Any, schema: Any) -> _Cached:
        ctx: Context = self.context_value
        fragments = dict(self.fragments)
        planner = Planner(schema, fragments, dict(self.variable_values.coerced), ctx)
        columns, keys = [], []
        plans = FIELDS.get(root_type.name, {})
        for key, details in grouped.items():
            nodes = [d.node for d in details]
            name = nodes[0].name.value
            plan = plans.get(name)
            if plan is None:
                continue
            sel = Selection(key, name, nodes, root_type.fields.get(name))
            try:
                columns.append(plan(planner, root_type, sel, None))
            except (sj.Unplannable, AnjuError) as why:  # AnjuError: the client's input, which the resolvers answer for
                log.debug("not planned: %s (%s)", key, why)
                continue
            except Exception as exc:  # a planner bug: the resolvers still answer; verification reports it
                log.exception("planning %s failed", key)
                if ctx.settings.planner.verify:
                    MISMATCHES.append(f"planning {key} raised {exc!r}")
                continue
            keys.append(key)
        if not columns:
            return _Cached([], None)
        try:
            compiled = sj.compile_plan(columns, schema.plan_dialect, planner.hints)
            return _Cached(keys, compiled, complete=len(keys) == len(grouped))
        except Exception as exc:  # a planner bug: the resolvers answer; verification reports it
            log.exception("compiling the plan of %s failed", keys)
            if ctx.settings.planner.verify:
                MISMATCHES.append(f"compiling {keys} raised {exc!r}")
            return _Cached([], None)

    async def _verify(self, root_type: Any, root_value: Any, planned: dict[str, Any], pc: Any, raw: dict[str, RawJSON]) -> None:
        """Resolve the planned fields the old way too; record any difference (tests fail on it)."""
        errors_before = len(self.collected_errors.errors)
        resolved = super().execute_root_grouped_field_set(root_type, root_value, planned, False, pc)
        values = cast(dict[str, Any], await resolved if self.is_awaitable(resolved) else resolved)
        if len(self.collected_errors.errors) != errors_before:
            MISMATCHES.append(f"resolvers raised errors for planned fields {list(planned)}: {self.collected_errors.errors}")
            return
        for k, r in raw.items():
            expected = json.loads(json.dumps(values.get(k), default=str))
            got = r.decode()
            if _canonical(got) != _canonical(expected):
                source = self.operation.loc.source.body if self.operation.loc else "?"
                msg = f"planned {k!r} differs from the resolvers for {source!r}: planned {got!r} resolvers {expected!r}"
                log.error(msg)
                MISMATCHES.append(msg)


def _single_operation(source: str) -> bool:
    """Whether the document holds exactly one operation (parsed again: only when a plan is made)."""
    try:
        return sum(isinstance(d, OperationDefinitionNode) for d in parse(source).definitions) == 1
    except GraphQLError:
        return False


def _canonical(value: Any) -> str:
    """JSON with sorted keys and whole floats as integers (``100.0`` and ``100`` are the same JSON number)."""

    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v

    return json.dumps(norm(value), sort_keys=True, ensure_ascii=False)
