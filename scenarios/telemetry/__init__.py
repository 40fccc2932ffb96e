"""Load-generator telemetry: exact, mergeable latency statistics and the run's results folder.

Enable it in a locustfile with one call (it registers Locust event listeners and the
custom arguments ``--results-dir``, ``--metrics-port``, ``--metrics-host``,
``--metrics-linger``)::

    from scenarios.telemetry import plugin

    plugin.install()

Importing the package or any of its modules installs nothing. Outside a Locust process (the
harness, plain CPython) the pure modules import nothing from Locust or gevent, and read and
write the files:

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
