"""Query and mutation logic: SQL/PostGIS, DataLoader batch functions, domain errors.

Imports ``models`` only (never strawberry or ``anju``); functions take a sessionmaker and
limits as arguments and return plain rows/dicts/dataclasses.
"""
