"""Observability as code: Prometheus rules and Grafana dashboards for load campaigns.

``python -m dashboards.generate`` writes ``prometheus/rules/*.yml``, ``grafana/*.json`` and the
Grafana provisioning files from the modules here; the generated files are committed.
"""
