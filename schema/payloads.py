"""Payloads of the record keepers' mutations: the record as written and its household with the new ``version``.

Shared by the recording mutations (schema/mutations.py) and the registry's corrections (schema/registry.py).
"""

from __future__ import annotations

import strawberry

from schema.types import Employment, Household, IncomeLinkage, Member


@strawberry.type(description="What an employment mutation wrote.")
class EmploymentPayload:
    employment: Employment = strawberry.field(description="The employment as written.")
    household: Household = strawberry.field(description="The member's household, with its new `version`.")


@strawberry.type(description="What an income-linkage mutation wrote.")
class IncomeLinkagePayload:
    income_linkage: IncomeLinkage = strawberry.field(description="The income linkage as written.")
    household: Household = strawberry.field(description="The household, with its new `version`.")


@strawberry.type(description="What a member mutation wrote.")
class MemberPayload:
    member: Member = strawberry.field(description="The member as written.")
    household: Household = strawberry.field(description="The member's household, with its new `version`.")


@strawberry.type(description="What a household mutation wrote.")
class HouseholdPayload:
    household: Household = strawberry.field(description="The household as written, with its new `version`.")
