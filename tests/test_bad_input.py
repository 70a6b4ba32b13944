"""Bad input answers BAD_USER_INPUT naming the argument, an unknown id answers null; never INTERNAL."""

from __future__ import annotations

import base64
import math

import pytest

from resolvers.paging import encode_cursor


@pytest.mark.parametrize(
    "query",
    [
        pytest.param('{ household(id: "999999999") { id } }', id="household-unknown"),
        pytest.param('{ household(id: "abc") { id } }', id="household-not-a-number"),
        pytest.param('{ household(id: "99999999999999999999999") { id } }', id="household-beyond-int64"),
        pytest.param('{ relocationSite(id: "0") { id } }', id="site-zero"),
        pytest.param('{ facility(id: "-3") { id } }', id="facility-negative"),
        pytest.param('{ adminArea(code: "999999") { code } }', id="area-unknown"),
        pytest.param('{ adminArea(code: "x\' OR 1=1 --") { code } }', id="area-injection"),
    ],
)
async def test_unknown_ids_are_null(gql, query):  # type: ignore[no-untyped-def]
    r = await gql(query)
    assert r.errors is None
    assert list(r.data.values()) == [None]


def _err(r):  # type: ignore[no-untyped-def]
    assert r.errors, "expected an error"
    assert len(r.errors) == 1
    e = r.errors[0]
    assert "SELECT" not in e.message and "Traceback" not in e.message and "asyncpg" not in e.message
    return e


CURSOR_QUERIES = [
    "query($a: String) { households(after: $a) { nodes { id } } }",
    "query($a: String) { relocationSites(after: $a) { nodes { id } } }",
    "query($a: String) { facilities(after: $a) { nodes { id } } }",
    "query($a: String) { adminAreas(after: $a) { nodes { code } } }",
    'query($a: String) { adminArea(code: "513400") { children(after: $a) { nodes { code } } } }',
]


@pytest.mark.parametrize("query", CURSOR_QUERIES)
@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("not-a-cursor!!", id="garbage"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe").decode(), id="not-utf8"),
        pytest.param(encode_cursor("member", 5), id="other-list"),
        pytest.param(base64.urlsafe_b64encode(b"household:1; DROP TABLE household").decode(), id="injection"),
        pytest.param(encode_cursor("household", "9" * 30), id="huge-number"),
        pytest.param("", id="empty"),
    ],
)
async def test_malformed_cursor(gql, query, cursor):  # type: ignore[no-untyped-def]
    e = _err(await gql(query, a=cursor))
    assert e.extensions["code"] == "BAD_USER_INPUT"
    assert e.message.startswith("after:")
    assert e.extensions["field"] == "after"


@pytest.mark.parametrize("first", [100000, 501, -1])
async def test_first_out_of_range(gql, first):  # type: ignore[no-untyped-def]
    for q in (
        "query($f: Int) { households(first: $f) { nodes { id } } }",
        'query($f: Int) { relocationSite(id: "1") { households(first: $f) { nodes { id } } } }',
    ):
        e = _err(await gql(q, f=first))
        assert e.extensions["code"] == "BAD_USER_INPUT"
        assert "first" in e.message and "500" in e.message


async def test_first_beyond_graphql_int(gql):  # type: ignore[no-untyped-def]
    e = _err(await gql("{ households(first: 100000000000) { nodes { id } } }"))
    assert e.extensions["code"] == "BAD_USER_INPUT"
    assert "first" in e.message or "Int" in e.message


@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param('{ households(filter: {areaCode: "51x"}) { nodes { id } } }', "filter.areaCode", id="area-code"),
        pytest.param('{ households(filter: {siteId: "abc"}) { nodes { id } } }', "filter.siteId", id="site-id"),
        pytest.param('{ relocationSites(filter: {nameContains: ""}) { nodes { id } } }', "filter.nameContains", id="empty"),
        pytest.param('{ adminAreas(parentCode: "12") { nodes { code } } }', "parentCode", id="parent-code"),
    ],
)
async def test_bad_filters_name_the_field(gql, query, field):  # type: ignore[no-untyped-def]
    e = _err(await gql(query))
    assert e.extensions["code"] == "BAD_USER_INPUT"
    assert e.extensions["field"] == field and e.message.startswith(field)


async def test_like_wildcards_are_literal(gql):  # type: ignore[no-untyped-def]
    r = await gql(
        '{ a: relocationSites(filter: {nameContains: "%"}) { totalCount } '
        ' b: relocationSites(filter: {nameContains: "彝欣"}) { totalCount } }'
    )
    assert r.errors is None
    assert (r.data["a"]["totalCount"], r.data["b"]["totalCount"]) == (0, 1)


async def test_unknown_field_and_enum_are_bad_input(gql):  # type: ignore[no-untyped-def]
    for q in ("{ households { nodes { nope } } }", "{ facilities(filter: {kinds: [CASINO]}) { totalCount } }"):
        e = _err(await gql(q))
        assert e.extensions["code"] == "BAD_USER_INPUT"


async def test_too_deep_query(gql):  # type: ignore[no-untyped-def]
    inner = "code"
    for _ in range(20):
        inner = f"parent {{ {inner} }}"
    r = await gql(f'{{ adminArea(code: "513432208201") {{ {inner} }} }}')
    assert r.errors and r.errors[0].extensions["code"] == "QUERY_TOO_COMPLEX"


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        pytest.param("query($f: Int) { households(first: $f) { totalCount } }", {"f": "5"}, id="string-for-int"),
        pytest.param("query($f: Int) { households(first: $f) { totalCount } }", {"f": 5.5}, id="float-for-int"),
        pytest.param("query($i: ID!) { household(id: $i) { id } }", {"i": {"a": 1}}, id="object-for-id"),
        pytest.param("query($i: ID!) { household(id: $i) { id } }", {}, id="missing-required"),
        pytest.param(
            "query($f: FacilityFilter) { facilities(filter: $f) { totalCount } }", {"f": {"bogus": 1}}, id="unknown-input-field"
        ),
        pytest.param(
            "query($f: FacilityFilter) { facilities(filter: $f) { totalCount } }",
            {"f": {"kinds": ["school"]}},
            id="lowercase-enum",
        ),
        pytest.param(
            'query($d: Date) { household(id: "1") { employments(asOf: $d) { id } } }', {"d": "yesterday"}, id="bad-date"
        ),
    ],
)
async def test_wrong_variable_types_are_bad_input(gql, query, variables):  # type: ignore[no-untyped-def]
    e = _err(await gql(query, **variables))
    assert e.extensions["code"] == "BAD_USER_INPUT", e.message
    assert "Internal" not in e.message


@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param('{ relocationSites(filter: {name: "a\\u0000b"}) { totalCount } }', "filter.name", id="nul-name"),
        pytest.param(
            '{ facilities(filter: {nameContains: "\\u0000"}) { totalCount } }', "filter.nameContains", id="nul-contains"
        ),
        pytest.param(
            '{ households(filter: {areaCode: "510000\\n"}) { totalCount } }', "filter.areaCode", id="trailing-newline-code"
        ),
        pytest.param('{ household(id: "1") { netIncome(year: 32768) } }', "year", id="year-beyond-smallint"),
        pytest.param('{ household(id: "1") { incomeLinkages(year: -40000) { id } } }', "year", id="negative-year"),
        pytest.param('{ households(filter: {siteId: "²"}) { totalCount } }', "filter.siteId", id="superscript-digit"),
    ],
)
async def test_text_and_number_edges(gql, query, field):  # type: ignore[no-untyped-def]
    e = _err(await gql(query))
    assert e.extensions == {"code": "BAD_USER_INPUT", "field": field}, e.message


async def test_lone_surrogate_variable(gql):  # type: ignore[no-untyped-def]
    e = _err(await gql("query($n: String) { facilities(filter: {name: $n}) { totalCount } }", n="\ud800"))
    assert e.extensions == {"code": "BAD_USER_INPUT", "field": "filter.name"}


@pytest.mark.parametrize("id_", ["²", "⑤", "１", "001", " 1 ", "+1"])
async def test_non_canonical_ids_are_null(gql, id_):  # type: ignore[no-untyped-def]
    r = await gql("query($i: ID!) { household(id: $i) { id } facility(id: $i) { id } }", i=id_)
    assert r.errors is None and r.data == {"household": None, "facility": None}


@pytest.mark.parametrize("key", ["9999999999999999999", "²", "١"])
async def test_forged_numeric_cursor(gql, key):  # type: ignore[no-untyped-def]
    e = _err(await gql("query($a: String) { households(after: $a) { nodes { id } } }", a=encode_cursor("household", key)))
    assert e.extensions == {"code": "BAD_USER_INPUT", "field": "after"}


async def test_too_many_aliases_and_tokens(gql):  # type: ignore[no-untyped-def]
    aliases = " ".join(f'a{i}: adminArea(code: "510000") {{ name }}' for i in range(50))
    e = _err(await gql(f"{{ {aliases} }}"))
    assert e.extensions["code"] == "QUERY_TOO_COMPLEX"
    fields = " ".join("__typename" for _ in range(6000))
    e = _err(await gql(f"{{ {fields} }}"))
    assert e.extensions["code"] == "QUERY_TOO_COMPLEX"
    r = await gql('{ adminArea(code: "510000") { name } }')  # and the next request is served
    assert r.errors is None and r.data == {"adminArea": {"name": "四川省"}}


BOWTIE = {"type": "Polygon", "coordinates": [[[102, 28], [103, 29], [103, 28], [102, 29], [102, 28]]]}
BIG = {"type": "Polygon", "coordinates": [[[102 + 0.0001 * i, 28] for i in range(10_001)] + [[103, 29], [102, 28]]]}
GEOMETRY_CASES = [
    pytest.param({"type": "Point", "coordinates": [28.3, 102.4]}, "latitude", id="lat-lon-swapped"),
    pytest.param({"type": "Point", "coordinates": [200, 28]}, "longitude", id="lon-out-of-range"),
    pytest.param({"type": "Point", "coordinates": [float("nan"), 28]}, "finite", id="nan"),
    pytest.param({"type": "Point", "coordinates": [float("inf"), 28]}, "finite", id="infinity"),
    pytest.param(
        {"type": "Polygon", "coordinates": [[[102, 28], [103, 28], [103, 29], [102, 29]]]}, "closed", id="unclosed-ring"
    ),
    pytest.param({"type": "Polygon", "coordinates": [[[102, 28], [103, 28], [102, 28]]]}, ">= 4", id="short-ring"),
    pytest.param(BOWTIE, "invalid", id="bowtie"),
    pytest.param(BIG, "vertices", id="too-many-vertices"),
    pytest.param(
        {"type": "Point", "coordinates": [102, 28], "crs": {"type": "name", "properties": {"name": "EPSG:3857"}}},
        "crs",
        id="foreign-crs",
    ),
    pytest.param({"type": "Feature", "geometry": None}, "geometry type", id="not-a-geometry"),
    pytest.param("POINT(102 28)", "GeoJSON geometry object", id="wkt-string"),
    pytest.param({"type": "Point", "coordinates": ["102", 28]}, "[lon, lat]", id="string-number"),
]


@pytest.mark.parametrize(("geometry", "problem"), GEOMETRY_CASES)
async def test_bad_intersects_geometry(gql, geometry, problem):  # type: ignore[no-untyped-def]
    for query, field in (
        ("query($g: GeoJSON) { households(filter: {intersects: $g}) { totalCount } }", "filter.intersects"),
        ("query($g: GeoJSON!) { facilities(filter: {near: {point: $g, radiusMeters: 10}}) { totalCount } }", "filter.near.point"),
        ("query($g: GeoJSON!) { nearestFacilities(point: $g) { distanceMeters } }", "point"),
    ):
        polygon_for_point = field != "filter.intersects" and isinstance(geometry, dict) and geometry.get("type") == "Polygon"
        e = _err(await gql(query, g=geometry))
        assert e.extensions == {"code": "BAD_USER_INPUT", "field": field}, (field, e.message)
        assert ("expected Point" if polygon_for_point else problem) in e.message, (field, e.message)


@pytest.mark.parametrize(
    ("bbox", "problem"),
    [
        pytest.param([102, 28, 103], "3 numbers", id="three-numbers"),
        pytest.param([102, 29, 103, 28], "minLat", id="min-lat-above-max"),
        pytest.param([102, 28, 190, 29], "longitude", id="lon-range"),
        pytest.param([102, -95, 103, 29], "latitude", id="lat-range"),
    ],
)
async def test_bad_bbox(gql, bbox, problem):  # type: ignore[no-untyped-def]
    for query, field in (
        ("query($b: [Float!]) { relocationSites(filter: {bbox: $b}) { totalCount } }", "filter.bbox"),
        ("query($b: [Float!]) { featureCollection(layer: FACILITIES, bbox: $b) }", "bbox"),
    ):
        e = _err(await gql(query, b=bbox))
        assert e.extensions == {"code": "BAD_USER_INPUT", "field": field} and problem in e.message, e.message


@pytest.mark.parametrize("radius", [-5.0, 0.0, 1e12, float("inf")])
async def test_bad_radius(gql, radius):  # type: ignore[no-untyped-def]
    if math.isinf(radius):  # not a GraphQL Float at all: refused while coercing the variable, before any resolver
        e = _err(
            await gql("query($r: Float!) { householdsBeyond(distanceMeters: $r, ofKinds: [SCHOOL]) { totalCount } }", r=radius)
        )
        assert e.extensions == {"code": "BAD_USER_INPUT"} and "$r" in e.message
        return
    p = {"type": "Point", "coordinates": [102.4, 28.3]}
    e = _err(
        await gql(
            "query($p: GeoJSON!, $r: Float!) { households(filter: {near: {point: $p, radiusMeters: $r}}) { totalCount } }",
            p=p,
            r=radius,
        )
    )
    assert e.extensions == {"code": "BAD_USER_INPUT", "field": "filter.near.radiusMeters"}
    e = _err(await gql("query($r: Float!) { householdsBeyond(distanceMeters: $r, ofKinds: [SCHOOL]) { totalCount } }", r=radius))
    assert e.extensions == {"code": "BAD_USER_INPUT", "field": "distanceMeters"}
    e = _err(
        await gql(
            'query($r: Float!) { relocationSite(id: "1") { nearbyFacilities(radiusMeters: $r) { distanceMeters } } }', r=radius
        )
    )
    assert e.extensions == {"code": "BAD_USER_INPUT", "field": "radiusMeters"}


@pytest.mark.parametrize(
    ("args", "field"),
    [
        pytest.param("layer: HOUSEHOLDS, limit: 0", "limit", id="limit-zero"),
        pytest.param("layer: HOUSEHOLDS, limit: 100000", "limit", id="limit-huge"),
        pytest.param("layer: HOUSEHOLDS, zoom: 40", "zoom", id="zoom"),
        pytest.param('layer: HOUSEHOLDS, filter: {areaCode: "x"}', "filter.areaCode", id="area-code"),
        # filter members that do not apply to the layer
        pytest.param("layer: HOUSEHOLDS, filter: {kinds: [SCHOOL]}", "filter.kinds", id="kinds-on-households"),
        pytest.param('layer: ADMIN_AREAS, filter: {siteId: "1"}', "filter.siteId", id="site-on-admin-areas"),
        pytest.param('layer: HOUSEHOLDS, filter: {siteId: ""}', "filter.siteId", id="empty-site-id"),
    ],
)
async def test_bad_feature_collection_args(gql, args, field):  # type: ignore[no-untyped-def]
    e = _err(await gql(f"{{ featureCollection({args}) }}"))
    assert e.extensions == {"code": "BAD_USER_INPUT", "field": field}, e.message


@pytest.mark.parametrize(
    "query",
    [
        '{ relocationSite(id: "1") { employmentCoverage(asOf: "9999-12-31") { households } } }',
        '{ household(id: "1") { isZeroEmployment(asOf: "0001-01-01") } }',
        '{ households(filter: {zeroEmployment: true, asOf: "9999-12-31"}) { totalCount } }',
    ],
)
async def test_dates_outside_the_stored_range(gql, query):  # type: ignore[no-untyped-def]
    e = _err(await gql(query))
    assert e.extensions["code"] == "BAD_USER_INPUT" and "1900-01-01..2100-12-31" in e.message


@pytest.mark.parametrize("threshold", ["1E+1000", "10000.004", "-1", "NaN", "1E-200000"])
async def test_bad_threshold(gql, threshold):  # type: ignore[no-untyped-def]
    e = _err(await gql("query($t: Decimal) { householdsAtRisk(year: 2024, perCapitaThreshold: $t) { totalCount } }", t=threshold))
    assert e.extensions == {"code": "BAD_USER_INPUT", "field": "perCapitaThreshold"}, e.message


async def test_huge_int_literal(gql):  # type: ignore[no-untyped-def]
    e = _err(await gql('{ household(id: "1") { netIncome(year: ' + "1" * 5001 + ") } }"))
    assert e.extensions["code"] == "BAD_USER_INPUT"


async def test_more_hostile_geometries(gql):  # type: ignore[no-untyped-def]
    huge = {"type": "Point", "coordinates": [10**400, 27.9]}
    deep: object = [102.4, 28.3]
    for _ in range(500):
        deep = [deep]
    cases = [
        ("query($g: GeoJSON!) { nearestFacilities(point: $g) { distanceMeters } }", {"g": huge}, "point"),
        ("query($g: GeoJSON!) { nearestFacilities(point: $g, coordSys: GCJ02) { distanceMeters } }", {"g": huge}, "point"),
        (
            "query($g: GeoJSON) { households(filter: {intersects: $g, coordSys: GCJ02}) { totalCount } }",
            {"g": {"type": "MultiPolygon", "coordinates": deep}},
            "filter.intersects",
        ),
        (
            "query($g: GeoJSON) { households(filter: {intersects: $g}) { totalCount } }",
            {"g": {"type": "MultiPolygon", "coordinates": []}},
            "filter.intersects",
        ),
        (
            "query($g: GeoJSON) { households(filter: {intersects: $g}) { totalCount } }",
            {"g": {"type": "GeometryCollection", "geometries": []}},
            "filter.intersects",
        ),
    ]
    for query, variables, field in cases:
        e = _err(await gql(query, **variables))
        assert e.extensions == {"code": "BAD_USER_INPUT", "field": field}, e.message


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        pytest.param(
            'query($d: Date) { household(id: "1") { employments(asOf: $d) { id } } }', {"d": "20240101"}, id="basic-date"
        ),
        pytest.param(
            'query($d: Date) { household(id: "1") { employments(asOf: $d) { id } } }', {"d": "2024-W01-1"}, id="week-date"
        ),
        pytest.param(
            "query($t: Decimal) { householdsAtRisk(year: 2024, perCapitaThreshold: $t) { totalCount } }",
            {"t": "1_000"},
            id="underscore-decimal",
        ),
        pytest.param(
            "query($t: Decimal) { householdsAtRisk(year: 2024, perCapitaThreshold: $t) { totalCount } }",
            {"t": "١٢"},
            id="non-ascii-digits",
        ),
    ],
)
async def test_strict_date_and_decimal(gql, query, variables):  # type: ignore[no-untyped-def]
    e = _err(await gql(query, **variables))
    assert e.extensions["code"] == "BAD_USER_INPUT"


async def test_decimal_and_date_round_trip(gql):  # type: ignore[no-untyped-def]
    r = await gql(
        "query($t: Decimal, $d: Date) { householdsAtRisk(year: 2024, perCapitaThreshold: $t, first: 1) "
        '{ totalCount } household(id: "1") { employments(asOf: $d) { startOn monthlyWage } } }',
        t="10000.00",
        d="2024-04-13",
    )
    assert r.errors is None
    for e in r.data["household"]["employments"]:
        assert len(e["startOn"]) == 10 and e["monthlyWage"].count(".") == 1 and len(e["monthlyWage"].split(".")[1]) == 2


async def test_limits_are_told_by_the_rule_not_by_words_in_the_message(gql):  # type: ignore[no-untyped-def]
    """The token limit is QUERY_TOO_COMPLEX (maxTokens); a field that merely has "introspection" or
    "aliases" in its name is an unknown field (BAD_USER_INPUT), not a limit."""
    many = "{ " + " ".join(f"a{i}: __typename" for i in range(3000)) + " }"
    e = _err(await gql(many))
    assert e.extensions == {"code": "QUERY_TOO_COMPLEX", "limit": "maxTokens"}
    assert e.message == "maxTokens: Syntax Error: Document contains more than 5000 tokens. Parsing aborted."
    for name in ("introspection", "tokens", "aliases"):
        e = _err(await gql("{ " + name + " }"))
        assert e.extensions == {"code": "BAD_USER_INPUT"} and name in e.message, name


async def test_self_raised_share_beyond_its_scale_is_refused_not_rounded(gql):  # type: ignore[no-untyped-def]
    """numeric(4,3) would store 0.9996 as 1.000 — no co-funding at all; refused naming the field."""
    pid = (await gql("{ cooperationPartners(first: 1) { nodes { id } } }")).data["cooperationPartners"]["nodes"][0]["id"]
    q = (
        'mutation($p: ID!, $s: Decimal) { recordCooperationProject(input: {partnerId: $p, name: "share test", '
        'countyCode: "513432", year: 2031, funds: "1.00", selfRaisedShare: $s}) { cooperationProject { id } } }'
    )
    e = _err(await gql(q, p=pid, s="0.9996"))
    assert e.extensions == {"code": "BAD_USER_INPUT", "field": "selfRaisedShare"} and "0.9996" in e.message
    r = await gql("query($p: ID!) { cooperationPartner(id: $p) { projects(year: 2031) { name } } }", p=pid)
    assert r.data["cooperationPartner"]["projects"] == []


@pytest.mark.parametrize(
    ("query", "named"),
    [
        pytest.param(
            '{ relocationSite(id: "1") { employmentCoverage(asOf: "2024-13-45") { households } } }',
            "Argument 'asOf' has invalid value:",
            id="argument",
        ),
        pytest.param(
            '{ households(filter: {asOf: "2024-13-45"}) { totalCount } }',
            "Argument 'filter' has invalid value at 'asOf':",
            id="input-field",
        ),
        pytest.param(
            '{ household(id: "1") { employments(asOf: "20240101") { id } } }',
            "Argument 'asOf' has invalid value:",
            id="basic-form",
        ),
    ],
)
async def test_a_bad_date_literal_names_its_argument(gql, query, named):  # type: ignore[no-untyped-def]
    e = _err(await gql(query))
    assert e.extensions == {"code": "BAD_USER_INPUT"}
    assert e.message.startswith(named) and "YYYY-MM-DD" in e.message, e.message
