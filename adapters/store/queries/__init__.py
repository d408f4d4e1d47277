"""What the CLI, the NATS API, the console and ops read from a store."""
