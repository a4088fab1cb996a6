"""Alembic migrations of the coordinator's database (applied by ``upgrade_database``)."""
