"""What an operator watches: metrics for Prometheus, health and readiness probes, JSON logs."""
