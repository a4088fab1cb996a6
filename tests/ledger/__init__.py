"""Ledger tests: one contract suite over SQLite and PostgreSQL, vectors, model and concurrency."""
