"""What the adapters tell a user in one line (exit 2), never as a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with what was asked or with the surroundings: the store, NATS, a setting."""
