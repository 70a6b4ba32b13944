"""Small-cell suppression of aggregates shown to cooperation partners (issue #5).

Rule: a cell — a count of households, or a count, sum or rate computed from fewer than ``k``
households — is shown as ``None`` (``suppressed``), so no single household can be singled out.
``k`` is ``privacy.min_cell_households`` (default 5).

- Coverage: ``households`` < k suppresses the whole coverage. Each other household count below k is
  null, and ``coverageRate`` with it. Person counts are null when the households behind them
  (``households_employed`` / ``households_stably_employed`` / per channel) number below k.
- Linkage summaries: ``householdsLinked`` < k suppresses total and every mechanism. A mechanism with
  fewer than k households is null (amount and households); and when the suppressed mechanisms
  together hold fewer than k households, the smallest shown ones are suppressed too, until they
  hold at least k — otherwise ``total − Σ shown`` would give the hidden amounts back (secondary
  suppression).
- Per facility (``byFacility``, ``employees``, ``linkedHouseholds``): fewer than k households → null.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from resolvers import coverage as cov


def cell(value: int, households: int, k: int | None) -> int | None:
    """``value`` unless it rests on fewer than ``k`` households (``k`` None: no suppression)."""
    return value if k is None or households >= k else None


def suppress_amount(amount: Decimal, households: int, k: int | None) -> Decimal | None:
    """A sum over ``households``: None when they number fewer than ``k``."""
    return amount if k is None or households >= k else None


@dataclass(frozen=True)
class ShownChannel:
    channel: object
    count: int | None


@dataclass(frozen=True)
class ShownCoverage:
    """``EmploymentCoverage`` as shown: cells may be None; ``suppressed`` when any is."""

    households: int | None
    households_with_labor_force: int | None
    households_covered: int | None
    coverage_rate: float | None
    zero_employment_households: int | None
    employed_persons: int | None
    stably_employed_persons: int | None
    by_channel: list[ShownChannel]
    suppressed: bool


def coverage(c: cov.EmploymentCoverage, k: int | None) -> ShownCoverage:
    """Apply the rule above to one coverage (``k`` None: shown as computed)."""
    if k is not None and c.households < k:
        return ShownCoverage(None, None, None, None, None, None, None, [], True)
    lf = cell(c.households_with_labor_force, c.households_with_labor_force, k)
    covered = cell(c.households_covered, c.households_covered, k)
    zero = cell(c.zero_employment_households, c.zero_employment_households, k)
    employed = cell(c.employed_persons, c.households_employed, k)
    stably = cell(c.stably_employed_persons, c.households_stably_employed, k)
    channels = [ShownChannel(x.channel, cell(x.count, x.households, k)) for x in c.by_channel]
    rate = covered / lf if lf and covered is not None else None
    suppressed = None in (lf, covered, zero, employed, stably) or any(x.count is None for x in channels)
    return ShownCoverage(c.households, lf, covered, rate, zero, employed, stably, channels, suppressed)


@dataclass(frozen=True)
class ShownMechanism:
    mechanism: object
    amount: Decimal | None
    households: int | None


@dataclass(frozen=True)
class ShownSummary:
    households_linked: int | None
    total: Decimal | None
    by_mechanism: list[ShownMechanism]
    suppressed: bool


def mechanisms(items: list[cov.MechanismAmount], k: int | None) -> tuple[list[ShownMechanism], bool]:
    """Primary and secondary suppression of per-mechanism cells (see the module docstring)."""
    if k is None:
        return [ShownMechanism(x.mechanism, x.amount, x.households) for x in items], False
    hidden = {i for i, x in enumerate(items) if x.households < k}
    if hidden:
        shown = sorted((i for i in range(len(items)) if i not in hidden), key=lambda i: (items[i].households, i))
        while sum(items[i].households for i in hidden) < k and shown:
            hidden.add(shown.pop(0))
    out = [ShownMechanism(x.mechanism, None, None) if i in hidden else ShownMechanism(x.mechanism, x.amount, x.households)
           for i, x in enumerate(items)]
    return out, bool(hidden)


def summary(s: cov.IncomeLinkageSummary, k: int | None) -> ShownSummary:
    """Apply the rule above to one income-linkage summary."""
    if k is not None and s.households_linked < k:
        return ShownSummary(None, None, [ShownMechanism(x.mechanism, None, None) for x in s.by_mechanism], True)
    mech, hidden = mechanisms(s.by_mechanism, k)
    return ShownSummary(s.households_linked, s.total, mech, hidden)
