"""Alembic migrations of the database schema, shipped inside mailbot as mailbot.migrations."""
