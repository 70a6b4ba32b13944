"""Anju (安居) service shell: settings, app factory, database engine, CLI, local PostGIS."""
