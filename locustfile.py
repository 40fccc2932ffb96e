"""Locust entry point: ``locust`` in the repository root runs the portal's journeys.

The locustfile itself is ``scenarios/locustfile.py`` (package data that ``portal-load run``
hands to Locust when installed); this file imports its user classes, so that both run the same
code. Examples of the options are in its docstring.
"""

from scenarios.locustfile import AnonymousVisitor, CapacityProbe, CitizenUser, OpenModelVisits

__all__ = ["AnonymousVisitor", "CapacityProbe", "CitizenUser", "OpenModelVisits"]
