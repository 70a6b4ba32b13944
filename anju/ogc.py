"""OGC API Features (placeholder while it is built)."""

from typing import Any

ROUTES: list[Any] = []
