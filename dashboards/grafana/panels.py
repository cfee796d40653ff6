"""Shared building blocks, so every dashboard looks and queries the same way.

Why helpers instead of raw SDK calls in each board: the datasource must be the
provisioned one with the fixed uid (``${DS_...}`` placeholders only work on manual
import), every query needs the same datasource, and the scenario filter, refresh
and time range should not drift between dashboards.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import heatmap as heatmap_b
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.models import common, dashboard, heatmap
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

_PanelT = TypeVar("_PanelT")

DATASOURCE_UID = "bankguard-prometheus"
DATASOURCE = dashboard.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
TAG = "bankguard"
REFRESH = "10s"
TIME_FROM = "now-1h"

#: Label matcher for the ``scenario`` variable; ``=~`` because it is multi-value.
SCENARIO = 'scenario=~"$scenario"'
#: Rate window that Grafana keeps at least four scrape intervals wide.
RATE = "$__rate_interval"

#: High-risk ratio above which a scenario deserves a look (the red line on the panels).
HIGH_RISK_THRESHOLD = 0.2
#: The latency SLO; the worker's histogram has a bucket boundary exactly here.
LATENCY_SLO_S = 0.1


def _frame(panel: _PanelT, title: str, description: str, width: int, height: int) -> _PanelT:
    """What every panel has: title, the provisioned datasource, a size, a description if any."""
    panel = panel.title(title).datasource(DATASOURCE).span(width).height(height)  # type: ignore[attr-defined]
    return panel.description(description) if description else panel  # type: ignore[attr-defined]


def new_dashboard(uid: str, title: str, description: str) -> dash_b.Dashboard:
    """A dashboard with the project's uid, tags, refresh, time range and cross-links."""
    return (
        dash_b.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .refresh(REFRESH)
        .time(TIME_FROM, "now")
        .timezone("browser")
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .link(
            dash_b.DashboardLink("bankguard")
            .type(dashboard.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )


def query_variable(name: str, query: str, *, label: str, multi: bool = True) -> dash_b.QueryVariable:
    """A Prometheus label-values variable; multi-value ones include "All" (matched as ``.+``)."""
    variable = (
        dash_b.QueryVariable(name)
        .label(label)
        .query(query)
        .datasource(DATASOURCE)
        .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
    )
    if multi:
        variable = variable.all_value(".+").current(
            dashboard.VariableOption(selected=True, text="All", value="$__all"))
    return variable


def scenario_variable(*, multi: bool = True) -> dash_b.QueryVariable:
    """The ``scenario`` variable every dashboard filters on."""
    return query_variable("scenario", "label_values(bankguard_events_total, scenario)",
                          label="Scenario", multi=multi)


def query(expr: str, legend: str = "__auto", *, instant: bool = False,
          fmt: PromQueryFormat | None = None, interval: str | None = None) -> prometheus.Dataquery:
    """One PromQL target on the provisioned datasource (refIds are set by the builder)."""
    target = prometheus.Dataquery().expr(expr).legend_format(legend).datasource(DATASOURCE)
    target = target.instant() if instant else target.range()
    if fmt is not None:
        target = target.format(fmt)
    if interval is not None:
        target = target.interval(interval)
    return target


def thresholds(*steps: tuple[float | None, str]) -> dash_b.ThresholdsConfig:
    """Absolute thresholds; the first step's value is ``None`` (the base colour)."""
    return (dash_b.ThresholdsConfig().mode(dashboard.ThresholdsMode.ABSOLUTE)
            .steps([dashboard.Threshold(value=value, color=color) for value, color in steps]))


def _legend(as_table: bool = False) -> common_b.VizLegendOptions:
    mode = common.LegendDisplayMode.TABLE if as_table else common.LegendDisplayMode.LIST
    return (common_b.VizLegendOptions().show_legend(True).display_mode(mode)
            .placement(common.LegendPlacement.BOTTOM).calcs(["lastNotNull", "max"] if as_table else []))


def graph(title: str, targets: Iterable[prometheus.Dataquery], *, unit: str = "short",
          description: str = "", width: int = 12, height: int = 8, stacked: bool = False,
          threshold: float | None = None, min_val: float | None = 0, max_val: float | None = None,
          legend_table: bool = False) -> timeseries.Panel:
    """A time series panel; ``threshold`` draws a dashed red line (SLO or risk limit)."""
    panel = (
        _frame(timeseries.Panel(), title, description, width, height)
        .targets(list(targets)).unit(unit)
        .fill_opacity(15 if stacked else 5).line_width(1).show_points(common.VisibilityMode.NEVER)
        .legend(_legend(legend_table))
        .tooltip(common_b.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                 .sort(common.SortOrder.DESCENDING))
    )
    if min_val is not None:
        panel = panel.min(min_val)
    if max_val is not None:
        panel = panel.max(max_val)
    if stacked:
        panel = panel.stacking(common_b.StackingConfig().mode(common.StackingMode.NORMAL))
    if threshold is not None:
        panel = (panel.thresholds(thresholds((None, "green"), (threshold, "red")))
                 .thresholds_style(common_b.GraphThresholdsStyleConfig()
                                   .mode(common.GraphThresholdsStyleMode.DASHED)))
    return panel


def single_stat(title: str, target: prometheus.Dataquery, *, unit: str = "short",
                description: str = "", width: int = 6, height: int = 4,
                steps: tuple[tuple[float | None, str], ...] = ((None, "green"),),
                text_mode: common.BigValueTextMode = common.BigValueTextMode.AUTO) -> stat.Panel:
    """A big-number stat panel coloured by ``steps``, showing the last value."""
    return (
        _frame(stat.Panel(), title, description, width, height)
        .with_target(target).unit(unit)
        .thresholds(thresholds(*steps)).color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA).text_mode(text_mode)
        .reduce_options(common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def organize(exclude: Iterable[str] = ("Time",), rename: dict[str, str] | None = None,
             order: Iterable[str] = ()) -> dashboard.DataTransformerConfig:
    """Grafana's "organize fields" transformation: hide, rename and order table columns."""
    return dashboard.DataTransformerConfig(id_val="organize", options={
        "excludeByName": dict.fromkeys(exclude, True),
        "renameByName": dict(rename or {}),
        "indexByName": {name: i for i, name in enumerate(order)},
    })


def table_panel(title: str, targets: Iterable[prometheus.Dataquery], *, description: str = "",
                width: int = 12, height: int = 8, unit: str = "short",
                transformations: Iterable[dashboard.DataTransformerConfig] = ()) -> table.Panel:
    """A table over instant queries, with the given transformations applied in order."""
    return (
        _frame(table.Panel(), title, description, width, height)
        .targets(list(targets)).unit(unit)
        .transformations(list(transformations))
    )


def bucket_heatmap(title: str, bucket_expr: str, *, unit: str, description: str = "",
                   width: int = 12, height: int = 8) -> heatmap_b.Panel:
    """A heatmap of a Prometheus histogram: one row per ``le`` bucket, no re-bucketing.

    ``bucket_expr`` must be ``sum by (le) (increase(<name>_bucket[...]))`` so each
    cell is the count of observations in that bucket during the step.
    """
    return (
        _frame(heatmap_b.Panel(), title, description, width, height)
        .with_target(query(bucket_expr, "{{le}}", fmt=PromQueryFormat.HEATMAP))
        .calculate(False)
        .rows_frame(heatmap_b.RowsHeatmapOptions().layout(common.HeatmapCellLayout.LE))
        .y_axis(heatmap_b.YAxisConfig().unit(unit))
        .color(heatmap_b.HeatmapColorOptions().mode(heatmap.HeatmapColorMode.SCHEME)
               .scheme("Oranges").fill("dark-orange").steps(64)
               .scale(heatmap.HeatmapColorScale.EXPONENTIAL).exponent(0.5))
        .cell_gap(1).show_value(common.VisibilityMode.NEVER)
    )


def value_timeline(title: str, target: prometheus.Dataquery, *, unit: str,
                   steps: tuple[tuple[float | None, str], ...], description: str = "",
                   width: int = 24, height: int = 8, time_from: str | None = None) -> statetimeline.Panel:
    """A state timeline used as a heatmap: one lane per series, cells coloured by ``steps``."""
    panel = (
        _frame(statetimeline.Panel(), title, description, width, height)
        .with_target(target).unit(unit)
        .thresholds(thresholds(*steps))
        .color_scheme(dash_b.FieldColor().mode(dashboard.FieldColorModeId.THRESHOLDS))
        .merge_values(False).show_value(common.VisibilityMode.AUTO).fill_opacity(80)
        .legend(common_b.VizLegendOptions().show_legend(True).display_mode(common.LegendDisplayMode.LIST)
                .placement(common.LegendPlacement.BOTTOM))
    )
    return panel.time_from(time_from) if time_from else panel


def row(title: str) -> dash_b.Row:
    """A section header; rows carry no queries, so they have no datasource."""
    return dash_b.Row(title).collapsed(False)
