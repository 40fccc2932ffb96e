"""Client and server on the same row: every request name maps to the mock's route template.

- The table (``scenarios/routes.py``) knows every name the journeys use (read from their
  source), and only templates the mock serves.
- A real run: every request name lands on a route the mock reported in ``mock-metrics.json``
  (scraped at the run's end), with matching counts, and the report shows each route with the
  generator's latency, the mock's own and the difference.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.observe.mock_metrics import read_mock_metrics
from mock_portal import create_app
from mock_portal.config import load_config
from mock_portal.routes import OPERATIONS_ROUTES
from scenarios.routes import API_ROUTES, REQUEST_ROUTES, route_of

ROOT = Path(__file__).resolve().parents[2]
JOURNEYS = sorted((ROOT / "scenarios" / "journeys").glob("*.py"))
HTTP_CALLS = ("get", "post", "put", "patch", "delete")


def _names_in_journeys() -> set[str]:
    """Request names the journeys' source gives: ``name=`` literals and ``*_NAME`` constants,
    or the literal path of a ``j.call(METHOD, PATH)`` without a name."""
    names: set[str] = set()
    for path in JOURNEYS:
        tree = ast.parse(path.read_text())
        constants = {
            target.id: node.value.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name) and target.id.endswith("_NAME")
        }
        names |= {v for v in constants.values() if isinstance(v, str)}
        for node in ast.walk(tree):
            method = getattr(node.func, "attr", "") if isinstance(node, ast.Call) else ""
            if method not in ("call", "request", *HTTP_CALLS):
                continue
            assert isinstance(node, ast.Call)
            keywords = {k.arg: k.value for k in node.keywords}
            name = keywords.get("name")
            # j.call("GET", "/path") / client.request("GET", "/path"), or client.get("/path")
            url_at = 0 if method in HTTP_CALLS else 1
            if isinstance(name, ast.Constant):
                names.add(name.value)
            elif isinstance(name, ast.IfExp):
                names |= {n.value for n in (name.body, name.orelse) if isinstance(n, ast.Constant)}
            elif name is None and len(node.args) > url_at:
                url = node.args[url_at]
                if isinstance(url, ast.Constant):
                    names.add(url.value)
    return {n for n in names if isinstance(n, str) and n.startswith("/")}


def test_the_table_knows_every_name_the_journeys_use() -> None:
    names = _names_in_journeys()
    assert {"/api/v1/services/[code]", "/oauth2/token [code]", "/api/v1/payments [retry]"} <= names
    assert names - set(REQUEST_ROUTES) == set()
    assert set(REQUEST_ROUTES.values()) <= set(API_ROUTES)


def test_the_templates_are_the_routes_the_mock_serves() -> None:
    app = create_app(load_config(None))
    served = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert set(API_ROUTES) == served - OPERATIONS_ROUTES


@pytest.mark.parametrize(
    ("name", "route"),
    [
        ("/api/v1/services [search]", "/api/v1/services"),
        ("/api/v1/payments [retry]", "/api/v1/payments"),
        ("/api/v1/payments/charges", "/api/v1/payments/charges"),
        ("/api/v1/payments/pay-0001/receipt", "/api/v1/payments/{id}/receipt"),
        ("http://127.0.0.1:8080/api/v1/me?x=1", "/api/v1/me"),
        ("login", None),
        ("/metrics", None),
    ],
)
def test_names_outside_the_table_match_a_template(name: str, route: str | None) -> None:
    assert route_of(name) == route


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_run_puts_client_and_server_latency_on_one_row_per_route(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--duration", "6s", "--users", "8",
         "--spawn-rate", "8", "--think-scale", "0.05", "--workers", "1", "--no-tty",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    assert done.returncode in (0, 4), done.stdout[-3000:] + done.stderr[-3000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    server = read_mock_metrics(run_dir)
    assert server is not None, "no mock-metrics.json"
    by_route = {(r.route, r.method): r for r in server}
    assert not {r.route for r in server} & OPERATIONS_ROUTES  # operations are not load
    client_counts: dict[tuple[str, str], int] = {}
    for row in summary["requests"]:
        route = route_of(row["name"])
        assert (route, row["method"]) in by_route, (row["name"], route)
        key = (route, row["method"])
        client_counts[key] = client_counts.get(key, 0) + row["count"]
    for key, count in client_counts.items():
        # the mock answers every request the generator counts, and at most the few in flight
        # at the end more
        assert count <= by_route[key].count <= count + 8, key
    report = (run_dir / "report.html").read_text()
    section = report[report.index("<h2>Client and server by route</h2>") :]
    section = section[: section.index("<h2>", 10)]
    assert "<code>GET /api/v1/services/{code}</code>" in section
    row = re.search(r"<code>GET /api/v1/services</code>.*?</tr>", section).group(0)
    assert "/api/v1/services [search]" in row  # the names that call the route
    assert len(re.findall(r"<td>", row)) == 1 + 3 + 9  # after the route: count, mean, 3 x pNN
