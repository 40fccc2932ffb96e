"""Shared defaults of every dashboard, and one function per panel kind.

Built on grafana-foundation-sdk's builders (the style of its ``examples/python/red-method``):
the datasource, refresh, legend and tooltip defaults live here once, the dashboards in
``campaign.py``, ``portal_red.py`` and ``capacity.py`` only say what to draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import bargauge, common, gauge, heatmap, stat, timeseries
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    QueryVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery as PrometheusQuery
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models.heatmap import HeatmapColorMode
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from dashboards.contract import DATASOURCE_TYPE, DATASOURCE_UID

DATASOURCE = models.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)
#: A campaign lasts minutes: refresh about every other scrape and show the last half hour.
REFRESH = "5s"
TIME_FROM = "now-30m"
#: "All" of a multi-value variable; `=~".+"` matches every non-empty label value.
ALL_VALUE = ".+"
GRID_COLUMNS = 24

PanelBuilder = timeseries.Panel | stat.Panel | gauge.Panel | bargauge.Panel | heatmap.Panel


@dataclass(frozen=True)
class Query:
    """A PromQL target; ``instant`` for single-value panels (stat, gauge, bar gauge)."""

    expr: str
    legend: str = ""
    instant: bool = False
    heatmap: bool = False


def _targets(queries: Sequence[Query]) -> list[Builder[Dataquery]]:
    built: list[Builder[Dataquery]] = []
    for index, q in enumerate(queries):
        target = PrometheusQuery().expr(q.expr).ref_id(chr(ord("A") + index)).datasource(DATASOURCE)
        if q.legend:
            target = target.legend_format(q.legend)
        target = target.instant() if q.instant else target.range()
        if q.heatmap:
            target = target.format(PromQueryFormat.HEATMAP)
        built.append(target)
    return built


def _thresholds(*steps: tuple[float | None, str]) -> ThresholdsConfig:
    return (
        ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=value, color=color) for value, color in steps])
    )


GREEN_ONLY = ((None, "green"),)


def timeseries_panel(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    unit: str,
    width: int = 12,
    height: int = 8,
    min_val: float | None = 0,
    thresholds: Sequence[tuple[float | None, str]] = GREEN_ONLY,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .unit(unit)
        .span(width)
        .height(height)
        .line_width(1)
        .fill_opacity(10)
        .show_points(common_models.VisibilityMode.NEVER)
        .legend(
            common.VizLegendOptions()
            .show_legend(True)
            .display_mode(common_models.LegendDisplayMode.TABLE)
            .placement(common_models.LegendPlacement.BOTTOM)
            .calcs(["mean", "max", "lastNotNull"])
        )
        .tooltip(
            common.VizTooltipOptions()
            .mode(common_models.TooltipDisplayMode.MULTI)
            .sort(common_models.SortOrder.DESCENDING)
        )
        .thresholds(_thresholds(*thresholds))
    )
    if min_val is not None:
        panel = panel.min(min_val)
    if len(thresholds) > 1:
        panel = panel.thresholds_style(
            common.GraphThresholdsStyleConfig().mode(common_models.GraphTresholdsStyleMode.LINE)
        )
    return panel


def _reduce_last() -> common.ReduceDataOptions:
    return common.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def stat_panel(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    unit: str,
    width: int = 4,
    height: int = 4,
    decimals: int | None = None,
    thresholds: Sequence[tuple[float | None, str]] = GREEN_ONLY,
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .unit(unit)
        .span(width)
        .height(height)
        .reduce_options(_reduce_last())
        .color_mode(common_models.BigValueColorMode.VALUE)
        .graph_mode(common_models.BigValueGraphMode.AREA)
        .text_mode(common_models.BigValueTextMode.AUTO)
        .justify_mode(common_models.BigValueJustifyMode.AUTO)
        .orientation(common_models.VizOrientation.AUTO)
        .thresholds(_thresholds(*thresholds))
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def gauge_panel(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    unit: str,
    min_val: float,
    max_val: float,
    thresholds: Sequence[tuple[float | None, str]],
    width: int = 4,
    height: int = 8,
) -> gauge.Panel:
    return (
        gauge.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .unit(unit)
        .min(min_val)
        .max(max_val)
        .span(width)
        .height(height)
        .reduce_options(_reduce_last())
        .show_threshold_markers(True)
        .show_threshold_labels(False)
        .orientation(common_models.VizOrientation.AUTO)
        .thresholds(_thresholds(*thresholds))
    )


def bargauge_panel(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    unit: str,
    width: int = 12,
    height: int = 8,
) -> bargauge.Panel:
    return (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .unit(unit)
        .min(0)
        .span(width)
        .height(height)
        .reduce_options(_reduce_last())
        .display_mode(common_models.BarGaugeDisplayMode.GRADIENT)
        .orientation(common_models.VizOrientation.HORIZONTAL)
        .thresholds(_thresholds(*GREEN_ONLY))
    )


def heatmap_panel(
    title: str, description: str, query: Query, *, width: int = 12, height: int = 8
) -> heatmap.Panel:
    return (
        heatmap.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets([query]))
        .span(width)
        .height(height)
        .calculate(False)
        .y_axis(heatmap.YAxisConfig().unit("s"))
        .color(
            heatmap.HeatmapColorOptions().mode(HeatmapColorMode.SCHEME).scheme("Oranges").steps(64)
        )
    )


def query_variable(
    name: str, label: str, query: str, *, multi: bool = True, include_all: bool = True
) -> QueryVariable:
    """A variable filled from ``label_values(...)``, refreshed when the time range changes."""
    variable = (
        QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(include_all)
    )
    if include_all:
        variable = variable.all_value(ALL_VALUE).current(
            models.VariableOption(selected=True, text="All", value="$__all")
        )
    return variable


def build_dashboard(
    *,
    uid: str,
    title: str,
    description: str,
    tags: Sequence[str],
    variables: Sequence[QueryVariable],
    rows: Sequence[tuple[str, Sequence[PanelBuilder]]],
) -> Dashboard:
    """Assemble rows of panels; panel ids are assigned in order, rows included."""
    board = (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(list(tags))
        .refresh(REFRESH)
        .time(TIME_FROM, "now")
        .timezone("browser")
        .editable()
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
    )
    for variable in variables:
        board = board.with_variable(variable)
    # Flow layout on Grafana's 24-column grid: a panel that does not fit starts a new line.
    # (The SDK's own placement wraps only after a line overflows.)
    panel_id = x = y = line_height = 0
    for row_title, panels in rows:
        y, x, line_height = y + line_height, 0, 0
        panel_id += 1
        row = Row(row_title).id(panel_id).grid_pos(models.GridPos(x=0, y=y, w=24, h=1))
        board = board.with_row(row)
        y += 1
        for panel in panels:
            size = panel.build().grid_pos
            assert size is not None, "panel functions set a width and a height"
            if x + size.w > GRID_COLUMNS:
                y, x, line_height = y + line_height, 0, 0
            panel_id += 1
            position = models.GridPos(x=x, y=y, w=size.w, h=size.h)
            board = board.with_panel(panel.id(panel_id).grid_pos(position))
            x += size.w
            line_height = max(line_height, size.h)
    return board


def to_json(board: Dashboard) -> str:
    """Sorted, indented JSON, so that diffs of the committed files stay readable."""
    return JSONEncoder(sort_keys=True, indent=2).encode(board.build()) + "\n"
