"""The project's locustfile: the portal's journeys, shapes and telemetry, for Locust.

``portal-load run`` hands this file to Locust (it ships as package data, see
``harness.package``); ``locustfile.py`` in the repository root imports it, so plain
``locust`` in a checkout runs the same code.

Closed model (users and think times, weights from the workload model)::

    locust --host http://127.0.0.1:8080 --headless -u 200 -r 20 -t 5m
    locust --host ... --headless --shape diurnal -u 2000 --shape-duration 1440 --shape-par 2.2

Open model (arrival rate, independent of response times)::

    locust --host ... --headless -u 1 --arrival-rate 50 --arrival-poisson -t 2m \\
        OpenModelVisits

Shape classes are selected with ``--shape`` (see ``scenarios/shapes.py``; their parameters are
in ``scenarios/shape_specs.py``); none is imported here by name, so Locust does not pick one
on its own. ``--seed N`` repeats every choice of a run; ``--accounts FILE`` signs in with a
deployment's own test accounts (``scenarios/accounts.py``).
"""

from scenarios import shapes  # noqa: F401  (registers --shape and installs the chosen one)
from scenarios.open_model import OpenModelVisits
from scenarios.probes import CapacityProbe  # portal-load capacity's executor
from scenarios.telemetry import plugin
from scenarios.users import AnonymousVisitor, CitizenUser

plugin.install()  # the results folder and the /metrics exporter

__all__ = ["AnonymousVisitor", "CapacityProbe", "CitizenUser", "OpenModelVisits"]
