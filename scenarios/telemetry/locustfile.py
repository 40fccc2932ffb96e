"""The harness's telemetry for a locustfile of a team's own: ``portal-load run --locustfile
theirs.py`` hands Locust ``-f theirs.py,<this file>``, so their users (``HttpUser``,
``FastHttpUser`` or ``PortalUser``) are recorded in HDR histograms, exported to Prometheus and
written to the run's results folder, with no edit to their file.

It defines no user class: Locust takes every user class of the other files.
"""

from scenarios.telemetry import plugin

plugin.install()
