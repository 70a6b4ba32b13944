"""Long analytic SQL of the resolvers, loaded with ``importlib.resources`` and run with bound parameters."""

from __future__ import annotations

import functools
from importlib import resources


@functools.cache
def read(name: str) -> str:
    """The text of ``resolvers/sql/<name>`` (e.g. ``trainees.sql``), read from the package once per process."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
