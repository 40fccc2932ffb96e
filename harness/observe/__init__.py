"""Observability: Prometheus (config, client, server), the stack, live stats."""
