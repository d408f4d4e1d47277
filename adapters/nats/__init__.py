"""NATS: the streams, the inbound consumers, the publisher, the query API, the embedded server."""
