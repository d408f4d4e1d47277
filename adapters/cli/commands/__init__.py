"""One module per command group; each has `register(verbs, parents)`, found by the CLI."""
