"""Processes sharing a store: roles one holds at a time, waiting out a store that is away."""
