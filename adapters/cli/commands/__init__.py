"""One module per command group; each has `register(verbs, common)`, found by the CLI."""
