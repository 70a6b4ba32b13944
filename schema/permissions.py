"""Which roles may ask which fields: strawberry permission classes, declared on the fields.

Row-level security (``resolvers.access``) confines what a viewer's SQL can read or write; these
classes say, before any SQL, where a role has no business at all (``FORBIDDEN``, the path naming
the field), or — with ``fail_silently`` — make a nullable field null for it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from strawberry import Info
from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from typing_extensions import override

from resolvers.access import KEEPERS, Role, Viewer
from schema.context import Context


def _viewer(info: Info[Context, Any]) -> Viewer:
    return info.context.viewer


class _Forbidden(BasePermission):
    error_extensions = {"code": "FORBIDDEN"}


class RolesOnly(_Forbidden):
    """FORBIDDEN unless the viewer's role is one of ``roles`` (a role set of ``resolvers.access``: the one definition)."""

    roles: ClassVar[frozenset[Role]] = frozenset()

    @override
    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return _viewer(info).role in self.roles


class ReadsHouseholds(_Forbidden):
    """Household, member, employment, linkage and income records.

    Every role but partners; for ``featureCollection`` only its HOUSEHOLDS layer is concerned.
    """

    message = "household records are not available to partner viewers"

    @override
    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        layer = kwargs.get("layer")
        if layer is not None and getattr(layer, "value", layer) != "households":
            return True
        return _viewer(info).reads_households


class WritesHouseholds(_Forbidden):
    """The record keepers' mutations: admins, and county officers (in their areas, by row-level security)."""

    message = "only admins and county officers record household data"

    @override
    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return _viewer(info).writes_households


class IsAdmin(_Forbidden):
    """The audit log and the writes of cooperation partners, pairings and projects: admins only."""

    message = "for admins only"

    @override
    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return _viewer(info).is_admin


class PartnerRecords(_Forbidden):
    """Cooperation partners: admins (all) and partners (their own, by row-level security)."""

    message = "cooperation partner records are for admins and partners"

    @override
    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        v = _viewer(info)
        return v.is_admin or v.role is Role.PARTNER


class NotPartner(_Forbidden):
    """Aggregates below the county (sites, facilities): a partner could subtract them from its county's."""

    message = "partner viewers get aggregates per paired county only"

    @override
    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return _viewer(info).role is not Role.PARTNER


class PairedCountyForPartners(_Forbidden):
    """An area's aggregates: partners only for their paired counties (``source`` is the AdminArea)."""

    message = "partner viewers get aggregates of their paired counties only"

    @override
    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        v = _viewer(info)
        return v.role is not Role.PARTNER or source.code in v.paired_counties


def allow(*permissions: type[BasePermission], null_otherwise: bool = False) -> list[FieldExtension]:
    """``extensions=`` of a field.

    FORBIDDEN unless every permission holds (null instead with ``null_otherwise``, for nullable fields).
    """
    return [PermissionExtension(permissions=[p() for p in permissions], fail_silently=null_otherwise, use_directives=False)]


class WritesPlaces(RolesOnly):
    """The registry of relocation sites and facilities: admins, and county officers (in their areas, by row-level security)."""

    message = "only admins and county officers keep the registry of relocation sites and facilities"
    roles = KEEPERS
