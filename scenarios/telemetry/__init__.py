"""Load-generator telemetry: exact, mergeable latency statistics and the run's results folder.

Enable it in a locustfile with one import (it registers Locust event listeners and the
custom arguments ``--results-dir``, ``--metrics-port``, ``--metrics-host``,
``--metrics-linger``)::

    import scenarios.telemetry.plugin  # noqa: F401

Importing the package itself inside a Locust process (``import scenarios.telemetry``) does
the same. Outside one (the harness, plain CPython) it imports nothing from Locust or gevent,
and the pure modules read and write the files:

- :mod:`~scenarios.telemetry.hdr`: HDR histogram configuration, units, statistics;
- :mod:`~scenarios.telemetry.recorder`: what a worker records per interval;
- :mod:`~scenarios.telemetry.aggregate`: the master's merged view of a run;
- :mod:`~scenarios.telemetry.results`: ``results/<run-id>/`` (atomic writes, readers);
- :mod:`~scenarios.telemetry.exporter`: the ``loadgen_*`` Prometheus collector and server;
- :mod:`~scenarios.telemetry.sources`: counters other modules (the open model) hand over;
- :mod:`~scenarios.telemetry.plugin`: the Locust wiring (gevent; Locust processes only).

Layout of a run (docs/architecture.md)::

    worker: request event -> IntervalRecorder --(every 2 s, "portal_hdr")--> master
    master: RunAggregator -> results/<run-id>/*.json|csv (every 5 s and at the end)
                          -> /metrics (LoadgenCollector, on every scrape)
"""

from __future__ import annotations

import sys

# Locust is imported before any locustfile; a plain CPython process never imports it, so
# this installs the Locust wiring exactly when the package is imported from a locustfile.
if "locust" in sys.modules:
    from scenarios.telemetry import plugin  # noqa: F401
