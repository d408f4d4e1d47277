"""The edge: store selection, the command line (and, later, NATS)."""
