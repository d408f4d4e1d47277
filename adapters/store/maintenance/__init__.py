"""Keeping a store sound: tamper verification, building its indexes."""
