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
strawberry.enum(m.Gender, name="Gender")
strawberry.enum(m.Relation, name="Relation", description="与户主关系 (relation to the head of household)")
strawberry.enum(m.PartnerKind, name="PartnerKind", description="东西部协作 partner kind")
strawberry.enum(
    m.ViewerRole,
    name="ViewerRole",
    description="ADMIN: everything; COUNTY_OFFICER: households under its areas; PLANNER: all "
    "spatial data and aggregates, personal data masked; PARTNER: aggregates, sites, "
    "facilities and projects of its paired counties",
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
PartnerKind = m.PartnerKind
ViewerRole = m.ViewerRole
