"""GraphQL enums: the models' enums, shown by member name (``LABOR_EXPORT``); DB values stay lowercase."""

from __future__ import annotations

import strawberry

import models as m

AdminLevel = strawberry.enum(m.AdminLevel, name="AdminLevel", description="行政区划级别")
AssistanceTier = strawberry.enum(m.AssistanceTier, name="AssistanceTier", description="重点帮扶县 tier")
SiteKind = strawberry.enum(m.SiteKind, name="SiteKind", description="安置方式")
FacilityKind = strawberry.enum(m.FacilityKind, name="FacilityKind", description="产业/服务设施 kind")
EmploymentChannel = strawberry.enum(m.EmploymentChannel, name="EmploymentChannel", description="就业渠道")
LinkageMechanism = strawberry.enum(m.LinkageMechanism, name="LinkageMechanism", description="利益联结 mechanism")
MonitoringCategory = strawberry.enum(m.MonitoringCategory, name="MonitoringCategory", description="防返贫监测对象类别")
PovertyStatus = strawberry.enum(m.PovertyStatus, name="PovertyStatus", description="脱贫户 / 一般户")
Gender = strawberry.enum(m.Gender, name="Gender")
Relation = strawberry.enum(m.Relation, name="Relation", description="与户主关系 (relation to the head of household)")
PartnerKind = strawberry.enum(m.PartnerKind, name="PartnerKind", description="东西部协作 partner kind")
ViewerRole = strawberry.enum(
    m.ViewerRole,
    name="ViewerRole",
    description="ADMIN: everything; COUNTY_OFFICER: households under its areas; PLANNER: all "
    "spatial data and aggregates, personal data masked; PARTNER: aggregates, sites, "
    "facilities and projects of its paired counties",
)
