"""GraphQL enums: the models' enums, shown by member name (``LABOR_EXPORT``); DB values stay lowercase.

``strawberry.enum`` registers each model enum as a GraphQL enum in place (it returns the same class),
so the names below are plain aliases of ``models``' enums: resolvers' rows carry values the schema
types can hold as they are, and mypy sees classes, not variables.
"""

from __future__ import annotations

import strawberry

import models as m

strawberry.enum(m.AdminLevel, name="AdminLevel", description="行政区划级别")
strawberry.enum(m.AssistanceTier, name="AssistanceTier", description="重点帮扶县 tier")
strawberry.enum(m.SiteKind, name="SiteKind", description="安置方式")
strawberry.enum(m.FacilityKind, name="FacilityKind", description="产业/服务设施 kind")
strawberry.enum(m.EmploymentChannel, name="EmploymentChannel", description="就业渠道")
strawberry.enum(m.LinkageMechanism, name="LinkageMechanism", description="利益联结 mechanism")
strawberry.enum(m.MonitoringCategory, name="MonitoringCategory", description="防返贫监测对象类别")
strawberry.enum(m.PovertyStatus, name="PovertyStatus", description="脱贫户 / 一般户")
strawberry.enum(m.Gender, name="Gender", description="性别 (gender) as recorded")
strawberry.enum(m.Relation, name="Relation", description="与户主关系 (relation to the head of household)")
strawberry.enum(m.PartnerKind, name="PartnerKind", description="东西部协作 partner kind")
strawberry.enum(m.JoinReason, name="JoinReason", description="入户原因 (why a member is in the household from joinedOn)")
strawberry.enum(m.LeaveReason, name="LeaveReason", description="减员原因 (why a member left the household on leftOn)")
strawberry.enum(
    m.ViewerRole,
    name="ViewerRole",
    description="ADMIN: everything; COUNTY_OFFICER: households under its areas; PLANNER: all "
    "spatial data and aggregates, personal data masked; PARTNER: aggregates, sites, "
    "facilities and projects of its paired counties; GRID_WORKER: households of its grids",
)

AdminLevel = m.AdminLevel
AssistanceTier = m.AssistanceTier
SiteKind = m.SiteKind
FacilityKind = m.FacilityKind
EmploymentChannel = m.EmploymentChannel
LinkageMechanism = m.LinkageMechanism
MonitoringCategory = m.MonitoringCategory
PovertyStatus = m.PovertyStatus
Gender = m.Gender
Relation = m.Relation
JoinReason = m.JoinReason
LeaveReason = m.LeaveReason
PartnerKind = m.PartnerKind
ViewerRole = m.ViewerRole


def describe_values(enum_type: object, descriptions: dict[str, str]) -> None:
    """GraphQL descriptions of an enum's values (the models' enums stay plain Python enums.

    So the descriptions are attached to strawberry's definition of them rather than written as ``enum_value``).
    """
    for value in enum_type.__strawberry_definition__.values:  # type: ignore[attr-defined]
        value.description = descriptions.get(value.name)


describe_values(
    AdminLevel,
    {
        "PROVINCE": "省 province (6-digit code ending in 0000, e.g. 510000 Sichuan)",
        "PREFECTURE": "市/州 prefecture (6-digit code ending in 00, e.g. 513400 Liangshan)",
        "COUNTY": "县/区 county (6-digit code, e.g. 513432 Xide)",
        "TOWNSHIP": "乡/镇 township (9-digit code)",
        "VILLAGE": "村/社区 village or community (12-digit code)",
    },
)
describe_values(
    AssistanceTier,
    {
        "NATIONAL_KEY": "国家乡村振兴重点帮扶县: national key assistance county",
        "PROVINCIAL_KEY": "省级重点帮扶县: provincial key assistance county",
    },
)
describe_values(
    SiteKind,
    {
        "URBAN": "城镇安置: centralized site in a city or county seat",
        "TOWN": "集镇安置: centralized site in a market town",
        "CENTRAL_VILLAGE": "中心村安置: site in a central village",
        "OTHER": "other settlement form",
    },
)
describe_values(
    FacilityKind,
    {
        "INDUSTRIAL_PARK": "产业园区: industrial park",
        "VEGETABLE_BASE": "蔬菜基地: (green) vegetable base",
        "ASSISTANCE_WORKSHOP": "帮扶车间: assistance workshop",
        "COMMUNITY_FACTORY": "社区工厂: community factory",
        "TRAINING_BASE": "培训基地: employment-training base",
        "TEA_PLANTATION": "茶园: tea plantation",
        "PROCESSING_PLANT": "加工厂: processing plant",
        "COOPERATIVE": "合作社: cooperative",
        "SCHOOL": "学校: school",
        "CLINIC": "卫生室/卫生院: clinic",
        "WATER_SUPPLY": "供水设施: water supply",
    },
)
describe_values(
    EmploymentChannel,
    {
        "LABOR_EXPORT": "劳务输出: labor export, work away from home (see outboundRegion)",
        "WORKSHOP": "帮扶车间吸纳: a job in an assistance workshop (facilityId required)",
        "SELF_EMPLOYMENT": "自主创业: self-employment",
        "PUBLIC_WELFARE_POST": "公益性岗位: public-welfare post",
        "LOCAL_ENTERPRISE": "就近企业务工: a job in a nearby enterprise",
        "FLEXIBLE": "灵活就业: flexible employment",
    },
)
describe_values(
    LinkageMechanism,
    {
        "WAGE": "工资: wages",
        "DIVIDEND": "分红: dividends",
        "LAND_RENT": "土地流转租金: land rent",
        "ORDER_PURCHASE": "订单收购: order purchase of the household's produce",
        "ASSET_INCOME": "资产收益: asset income",
        "OTHER": "其他: other",
    },
)
describe_values(
    MonitoringCategory,
    {
        "UNSTABLE_OUT_OF_POVERTY": "脱贫不稳定户: lifted out of poverty but unstable",
        "MARGINAL": "边缘易致贫户: marginal household prone to poverty",
        "SUDDEN_HARDSHIP": "突发严重困难户: household in sudden severe hardship",
    },
)
describe_values(
    PovertyStatus,
    {
        "POVERTY_ALLEVIATED": "脱贫户: registered poor, lifted out of poverty",
        "NON_POOR": "一般户: never registered poor",
    },
)
describe_values(Gender, {"MALE": "男 male", "FEMALE": "女 female"})
describe_values(
    Relation,
    {
        "HEAD": "户主: head of household",
        "SPOUSE": "配偶: spouse",
        "CHILD": "子女: child",
        "CHILD_IN_LAW": "儿媳/女婿: child-in-law",
        "GRANDCHILD": "孙子女: grandchild",
        "PARENT": "父母: parent",
        "SIBLING": "兄弟姐妹: sibling",
        "OTHER": "其他: other",
    },
)
describe_values(
    PartnerKind,
    {
        "GOVERNMENT": "政府: a donor government (province, city, district)",
        "ENTERPRISE": "企业: an enterprise",
        "SOCIAL_ORGANIZATION": "社会组织: a social organisation",
    },
)
describe_values(
    ViewerRole,
    {
        "ADMIN": "Administrator: every record, personal data, all writes",
        "COUNTY_OFFICER": "County officer (县级干部): households under its area codes, and writes to them",
        "PLANNER": "Planner: all records and aggregates, personal data masked, no writes",
        "PARTNER": "东西部协作 partner: aggregates, sites, facilities and projects of its paired counties",
        "GRID_WORKER": "网格员 (grid worker): the households of its bottom-level grids (三级网格), and writes to them",
    },
)
describe_values(
    JoinReason,
    {
        "REGISTERED": "登记: a member since the household was recorded",
        "BIRTH": "出生: born into the household (joinedOn = the birth date)",
        "MARRIAGE": "婚入: married into the household",
        "MOVING_IN": "迁入: moved in",
        "OTHER": "other",
    },
)
describe_values(
    LeaveReason,
    {"DEATH": "死亡: died", "MARRIAGE": "婚出: married out", "MOVING_OUT": "迁出: moved out", "OTHER": "other"},
)
