"""Small-cell suppression of aggregates shown to cooperation partners (issue #5).

Rule: a cell — a count of households, or a count, sum or rate computed from fewer than ``k``
households — is not shown, so no single household can be singled out. ``k`` is
``privacy.min_cell_households`` (default 5). Partners get aggregates of their paired counties only
(not of sites, facilities or smaller areas, which could be differenced against the county).

- Coverage: ``households`` < k suppresses the whole coverage (every count null). Each other
  household count below k is null, and ``coverageRate`` with it; so is a count whose difference
  from the count containing it (households ⊇ with labor force ⊇ covered / zero-employment) is
  between 1 and k − 1. Person counts are null when the
  households behind them (``households_employed`` / ``households_stably_employed``) number below k.
- Breakdowns (``byChannel``, ``byMechanism``, ``byFacility``): a cell of fewer than k households is
  left out of the list — its name would already tell that such households exist. Secondary
  suppression: while fewer than k *distinct* households stand behind what is left out (for
  ``byFacility`` including the linkages without a facility), the smallest shown cell is left out
  too, so ``total − Σ shown`` never gives back fewer than k households' yuan. Linkage breakdowns
  count those households in SQL (``coverage.households_outside``); ``byChannel`` (persons, and a
  person may count in two channels) uses the sum of its cells' households.
- Linkage summaries: ``householdsLinked`` < k suppresses total and every breakdown.
- ``suppressed`` is true whenever anything was nulled or left out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from resolvers import coverage as cov


def cell(value: int, households: int, k: int | None) -> int | None:
    """``value`` unless it rests on fewer than ``k`` households (``k`` None: no suppression)."""
    return value if k is None or households >= k else None


T = TypeVar("T")


def shown_cells(items: Sequence[T], households: Callable[[T], int], k: int | None) -> tuple[list[T], bool]:
    """The cells of a breakdown a partner may see, in their order, and whether any was left out (primary.

    Fewer than ``k`` households; secondary: until the left-out ones hold >= ``k``).
    """
    if k is None:
        return list(items), False
    hidden = {i for i, x in enumerate(items) if households(x) < k}
    if hidden:
        shown = sorted((i for i in range(len(items)) if i not in hidden), key=lambda i: (households(items[i]), i))
        while sum(households(items[i]) for i in hidden) < k and shown:
            hidden.add(shown.pop(0))
    return [x for i, x in enumerate(items) if i not in hidden], bool(hidden)


@dataclass(frozen=True, slots=True)
class ShownCoverage:
    """``EmploymentCoverage`` as shown: cells may be None, channels left out; ``suppressed`` when so."""

    households: int | None
    households_with_labor_force: int | None
    households_covered: int | None
    coverage_rate: float | None
    zero_employment_households: int | None
    employed_persons: int | None
    stably_employed_persons: int | None
    by_channel: list[cov.ChannelCount]
    suppressed: bool


def coverage(c: cov.EmploymentCoverage, k: int | None) -> ShownCoverage:
    """Apply the rule above to one coverage (``k`` None: shown as computed)."""
    if k is not None and c.households < k:
        return ShownCoverage(None, None, None, None, None, None, None, [], True)
    lf = cell(c.households_with_labor_force, c.households_with_labor_force, k)
    covered = cell(c.households_covered, c.households_covered, k)
    zero = cell(c.zero_employment_households, c.zero_employment_households, k)
    if k is not None:  # differences of nested counts are cells too: households ⊇ with labor force ⊇ covered, zero
        if 0 < c.households - c.households_with_labor_force < k:
            lf = None
        if 0 < c.households - c.households_covered < k or (
            lf is not None and 0 < c.households_with_labor_force - c.households_covered < k
        ):
            covered = None
        if lf is not None and 0 < c.households_with_labor_force - c.zero_employment_households < k:
            zero = None
    employed = cell(c.employed_persons, c.households_employed, k)
    stably = cell(c.stably_employed_persons, c.households_stably_employed, k)
    channels, left_out = shown_cells(c.by_channel, lambda x: x.households, k)
    rate = covered / lf if lf and covered is not None else None
    suppressed = left_out or None in (lf, covered, zero, employed, stably)
    return ShownCoverage(c.households, lf, covered, rate, zero, employed, stably, channels, suppressed)


async def shown_linkage_cells(
    cells: Sequence[cov.LinkageCell], k: int, households_outside: Callable[[list[str]], Awaitable[int]]
) -> tuple[list[cov.LinkageCell], bool]:
    """The cells of a linkage breakdown a partner may see, largest first, and whether any was left out.

    ``households_outside(shown keys)`` counts the distinct households behind everything not shown.
    """
    hidden = {i for i, c in enumerate(cells) if c.key is None or c.households < k}
    while hidden:
        shown = [i for i in range(len(cells)) if i not in hidden]
        outside = await households_outside([key for i in shown if (key := cells[i].key) is not None])  # None keys are hidden
        if outside >= k or not shown:
            break
        hidden.add(min(shown, key=lambda i: (cells[i].households, -i)))
    return [c for i, c in enumerate(cells) if i not in hidden], bool(hidden)


def summary_totals(s: cov.IncomeLinkageSummary, k: int | None) -> tuple[int | None, Decimal | None]:
    """(householdsLinked, total) as shown: both None when fewer than ``k`` households are linked.

    The breakdowns go through ``shown_linkage_cells``.
    """
    if k is not None and s.households_linked < k:
        return None, None
    return s.households_linked, s.total
