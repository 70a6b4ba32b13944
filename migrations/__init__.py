"""Alembic migrations (metadata from ``models``)."""
