"""The store: selection by path or URL, SQLite and PostgreSQL, roles, and reading the raw log."""
