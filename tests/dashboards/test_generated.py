"""The committed dashboards and rules are what the code generates, and Grafana can load them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from dashboards import generate
from dashboards.contract import DATASOURCE_UID
from dashboards.queries import iter_panels, load_dashboards, panel_queries, used_variables

#: Grafana migrates dashboards from schema 27 (Grafana 8) upwards; older is rejected as legacy.
MIN_SCHEMA_VERSION = 27
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range", "__range_s"}
BOARDS = load_dashboards()


def test_regenerating_changes_nothing() -> None:
    stale = [str(p.relative_to(generate.ROOT)) for p in generate.stale_files()]
    assert stale == [], f"run `python -m dashboards.generate` and commit: {stale}"


def test_generator_check_mode_exit_code() -> None:
    assert generate.main(["--check"]) == 0


def test_every_generated_dashboard_is_provisioned_from_its_folder() -> None:
    names = {p.name for p in generate.GRAFANA_DIR.glob("*.json")}
    assert names == set(generate.DASHBOARDS)


def _provisioned_datasource_uid() -> str:
    text = (generate.PROVISIONING_DIR / "datasources" / "prometheus.yml").read_text()
    uids = re.findall(r"^\s+uid:\s*(\S+)\s*$", text, re.MULTILINE)
    assert len(uids) == 1, uids
    return uids[0]


def test_provisioned_datasource_uid_is_the_one_dashboards_use() -> None:
    assert _provisioned_datasource_uid() == DATASOURCE_UID


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_dashboard_has_what_grafana_requires(name: str) -> None:
    board = BOARDS[name]
    assert isinstance(board["schemaVersion"], int)
    assert board["schemaVersion"] >= MIN_SCHEMA_VERSION
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", board["uid"]), board["uid"]
    assert board["title"]
    assert board["time"] == {"from": "now-30m", "to": "now"}
    ids = [panel["id"] for panel in iter_panels(board)]
    assert all(isinstance(i, int) and i > 0 for i in ids), ids
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {name}"
    for panel in iter_panels(board):
        grid = panel["gridPos"]
        assert 0 < grid["w"] <= 24 and grid["h"] > 0 and 0 <= grid["x"] <= 24 - grid["w"]
        assert panel["type"] in {"row", "timeseries", "stat", "gauge", "bargauge", "heatmap"}
    cells: dict[tuple[int, int], int] = {}
    for panel in iter_panels(board):
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"panels {cells[x, y]} and {panel['id']} overlap"
                cells[x, y] = panel["id"]


def test_dashboard_uids_are_unique() -> None:
    uids = [board["uid"] for board in BOARDS.values()]
    assert len(uids) == len(set(uids))


def _datasource_refs(board: dict[str, Any]) -> list[tuple[str, Any]]:
    refs = []
    for panel in iter_panels(board):
        if panel["type"] == "row":
            continue
        refs.append((f"panel {panel['id']}", panel.get("datasource")))
        refs += [
            (f"panel {panel['id']} {t['refId']}", t.get("datasource")) for t in panel["targets"]
        ]
    refs += [(f"${v['name']}", v.get("datasource")) for v in board["templating"]["list"]]
    return refs


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_query_refers_to_the_provisioned_datasource(name: str) -> None:
    uid = _provisioned_datasource_uid()
    wrong = [
        (where, ref)
        for where, ref in _datasource_refs(BOARDS[name])
        if ref != {"type": "prometheus", "uid": uid}
    ]
    assert wrong == []


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_panels_have_queries_with_unique_ref_ids(name: str) -> None:
    for panel in iter_panels(BOARDS[name]):
        if panel["type"] == "row":
            continue
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert ref_ids and all(ref_ids), panel["title"]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_variable_used_is_defined(name: str) -> None:
    board = BOARDS[name]
    defined = [v["name"] for v in board["templating"]["list"]]
    assert len(defined) == len(set(defined))
    for position, variable in enumerate(board["templating"]["list"]):
        # A variable's query may use only variables defined before it.
        assert used_variables(variable["query"]) <= set(defined[:position]), variable["name"]
    used = set()
    for query in panel_queries(name, board):
        used |= used_variables(query.expr)
    assert used - BUILTIN_VARIABLES <= set(defined)
    # A variable nobody uses is clutter on the dashboard.
    variable_queries = " ".join(v["query"] for v in board["templating"]["list"])
    assert set(defined) <= used | used_variables(variable_queries)


def test_used_variables_finds_every_syntax() -> None:
    assert used_variables('x{a=~"$job", b="${route}", c="[[name]]"}[$__rate_interval]') == {
        "job",
        "route",
        "name",
        "__rate_interval",
    }
