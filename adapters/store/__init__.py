"""The store: opened by path or URL (selection); persistence, queries, maintenance, coordination."""
