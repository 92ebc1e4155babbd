"""Build config/grafana/callcenter-trends.json: the long trends (months to years) over
the records in PostgreSQL, beyond Prometheus' retention (docs/metrics.md, "Grafana
trends (PostgreSQL)").

    python config/grafana/build_trends.py    # rewrites the JSON beside this file

The dashboard is made with grafana-foundation-sdk (the `test` extra), never edited
by hand: tests/records/test_grafana_trends.py checks that the file is what this
builds, and runs every panel's SQL against the records to check that it gives the
figures the reports give. The calls' figures are `records.stats.QUEUE_FIGURES`
itself, over the calls `records.stats.CALLS_IN_PERIOD` takes; the rates over them
are the ones of `reports.model.QueueFigures` (named as its properties are).

The SDK has no PostgreSQL query type: `SqlQuery` below is one, a
`cogvariants.Dataquery` as the SDK's own query types are.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.builders.common import StackingConfig, VizLegendOptions
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    GraphDrawStyle,
    LegendDisplayMode,
    LegendPlacement,
    StackingMode,
    VisibilityMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DynamicConfigValue,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from callcenter.records.reports import CATEGORIES
from callcenter.records.stats import CALLS_IN_PERIOD, QUEUE_FIGURES

OUTPUT = Path(__file__).with_name("callcenter-trends.json")

#: Grafana's PostgreSQL data source (its plugin id since Grafana 10.4; "postgres" before).
POSTGRES = "grafana-postgresql-datasource"
DATASOURCE = DataSourceRef(type_val=POSTGRES, uid="${datasource}")
ZONE = "Asia/Shanghai"


def bucket(column: str) -> str:
    """SQL: the start of the local day, week (from Monday) or month of `column` (a
    timestamptz), in the dashboard's zone (the variables `bucket` and `zone`)."""
    return f"date_trunc('$bucket', {column} AT TIME ZONE '$zone') AT TIME ZONE '$zone'"


def _calls_where() -> str:
    """`CALLS_IN_PERIOD` with Grafana's time range for its [$1, $2)."""
    period = "arrived_at >= $1 AND arrived_at < $2"
    if period not in CALLS_IN_PERIOD:
        raise RuntimeError("records.stats.CALLS_IN_PERIOD changed: update build_trends.py")
    return CALLS_IN_PERIOD.replace(period, "$__timeFilter(arrived_at)") + " AND queue IN ($queue)"


#: The figures a panel can show, by `reports.model.QueueFigures`'s names: SQL over one
#: row of `QUEUE_FIGURES` (a rate whose base is zero is NULL, as the model's is None).
FIGURES = {
    "service_level": "answered_within_target::float8 / nullif(offered - short_abandons, 0)",
    "asterisk_sl": "answered_within_target::float8 / nullif(answered, 0)",
    "asterisk_sl2": "(answered_within_target + abandoned_within_target)::float8"
    " / nullif(answered + abandoned, 0)",
    "abandonment_rate": "(abandoned - short_abandons)::float8"
    " / nullif(offered - short_abandons, 0)",
    "asa_seconds": "answer_seconds::float8 / nullif(answered, 0)",
    "offered": "offered",
    "answered": "answered",
    "abandoned": "abandoned",
    "short_abandons": "short_abandons",
    "closed": "closed",
    "no_agent": "no_agent",
}

LABELS = {
    "service_level": "Within the ring target (of offered − short abandons)",
    "asterisk_sl": "Asterisk SL (of answered)",
    "asterisk_sl2": "Asterisk SL2 (answered + abandoned within the target)",
    "abandonment_rate": "Abandoned (short abandons out)",
    "asa_seconds": "ASA",
    "offered": "Offered",
    "answered": "Answered",
    "abandoned": "Abandoned (short included)",
    "short_abandons": "Short abandons",
    "closed": "Closed (queue closed)",
    "no_agent": "No agent",
}

#: The complaints panel's columns.
COMPLAINTS = {
    "complaints_received": "Received",
    "complaints_closed": "Closed",
    "complaints_closed_in_time": "Closed in time",
    "complaints_timeliness_rate": "Closed in time, of closed",
}


def calls_sql(columns: list[str], by: str = "time") -> str:
    """SQL: `columns` of `FIGURES` per bucket of arrival (`by` "time") or per queue over
    the whole range (`by` "queue")."""
    key = f"{bucket('arrived_at')} AS time" if by == "time" else "queue"
    select = ",\n       ".join(f"{FIGURES[c]} AS {c}" for c in columns)
    return (
        f"SELECT {by},\n       {select}\n"
        f"  FROM (SELECT {key},{QUEUE_FIGURES}\n"
        f"          FROM calls WHERE {_calls_where()}\n"
        f"         GROUP BY 1) f\n"
        f" ORDER BY 1"
    )


def categories_sql() -> str:
    """SQL: the agents' records per bucket of the call they record, by category (as
    `records.reports` counts them)."""
    counts = ",\n       ".join(
        f"count(*) FILTER (WHERE category = '{c}') AS {c}" for c in CATEGORIES
    )
    return (
        f"SELECT {bucket('called_at')} AS time,\n       {counts}\n"
        "  FROM call_forms WHERE $__timeFilter(called_at)\n GROUP BY 1 ORDER BY 1"
    )


def complaints_sql() -> str:
    """SQL: complaints per bucket of receipt; closed, and closed in time (their class's
    milestone met by the deadline), as `records.complaints.monthly` counts them."""
    return (
        "SELECT time, complaints_received, complaints_closed, complaints_closed_in_time,\n"
        "       complaints_closed_in_time::float8 / nullif(complaints_closed, 0)\n"
        "         AS complaints_timeliness_rate\n"
        f"  FROM (SELECT {bucket('received_at')} AS time, count(*) AS complaints_received,\n"
        "               count(*) FILTER (WHERE status = 'closed') AS complaints_closed,\n"
        "               count(*) FILTER (WHERE status = 'closed' AND met_at <= deadline_at)\n"
        "                 AS complaints_closed_in_time\n"
        "          FROM complaints WHERE $__timeFilter(received_at)\n"
        "         GROUP BY 1) f\n ORDER BY 1"
    )


QUEUES_SQL = (
    "SELECT DISTINCT queue FROM calls"
    " WHERE $__timeFilter(arrived_at) AND outcome IS DISTINCT FROM 'rejected' ORDER BY 1"
)


class SqlQuery(cogvariants.Dataquery):
    """A PostgreSQL data source's query, as Grafana saves one written in code."""

    def __init__(self, ref_id: str, sql: str, fmt: str) -> None:
        self.ref_id, self.sql, self.fmt = ref_id, sql, fmt

    def to_json(self) -> dict[str, object]:
        return {
            "refId": self.ref_id,
            "datasource": DATASOURCE,
            "editorMode": "code",
            "format": self.fmt,
            "rawQuery": True,
            "rawSql": self.sql,
        }


class Sql(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, sql: str, fmt: str = "time_series", ref_id: str = "A") -> None:
        self._query = SqlQuery(ref_id, sql, fmt)

    def build(self) -> cogvariants.Dataquery:
        return self._query


def _named(panel: timeseries.Panel | table.Panel, columns: list[str]) -> None:
    for c in columns:
        label = LABELS.get(c) or COMPLAINTS[c]
        panel.override_by_name(c, [DynamicConfigValue(id_val="displayName", value=label)])


def _series(title: str, description: str, sql: str, columns: list[str], unit: str,
            *, bars: bool = False, rate: bool = False) -> timeseries.Panel:  # fmt: skip
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(Sql(sql))
        .unit(unit)
        .height(8)
        .span(12)
        .legend(
            VizLegendOptions()
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    if bars:
        panel.draw_style(GraphDrawStyle.BARS).fill_opacity(80).stacking(
            StackingConfig().mode(StackingMode.NONE)
        )
    else:
        panel.show_points(VisibilityMode.ALWAYS)
    if rate:
        panel.min(0).max(1)
    _named(panel, [c for c in columns if c in LABELS or c in COMPLAINTS])
    return panel


def build() -> dict[str, object]:
    """The dashboard, as the JSON Grafana imports."""
    rates = ["service_level", "asterisk_sl", "asterisk_sl2"]
    volumes = ["offered", "answered", "abandoned", "short_abandons"]
    turned_away = ["closed", "no_agent"]
    by_queue = ["offered", "answered", "service_level", "asterisk_sl", "abandonment_rate",
                "asa_seconds", "closed", "no_agent"]  # fmt: skip
    queue_table = (
        table.Panel()
        .title("By queue over the time range")
        .description("Each queue's calls that arrived in the dashboard's time range.")
        .datasource(DATASOURCE)
        .with_target(Sql(calls_sql(by_queue, by="queue"), fmt="table"))
        .height(8)
        .span(12)
    )
    for c in ("service_level", "asterisk_sl", "abandonment_rate"):
        queue_table.override_by_name(c, [DynamicConfigValue(id_val="unit", value="percentunit")])
    queue_table.override_by_name("asa_seconds", [DynamicConfigValue(id_val="unit", value="s")])
    _named(queue_table, by_queue)
    builder = (
        dash.Dashboard("Call centre trends (records)")
        .uid("callcenter-trends")
        .description(
            "The records' figures by local day, week or month, over months to years "
            "(docs/metrics.md, \"Grafana trends (PostgreSQL)\")."
        )
        .tags(["callcenter", "records"])
        .timezone(ZONE)
        .week_start("monday")
        .time("now/y", "now")
        .refresh("")
        .editable()
        .with_variable(
            dash.DatasourceVariable("datasource")
            .label("Records (PostgreSQL)")
            .type(POSTGRES)
        )
        .with_variable(
            dash.CustomVariable("zone")
            .label("Time zone of the days")
            .description("Set it to the dashboard's time zone (Settings → Time zone).")
            .values(ZONE)
            .current(VariableOption(selected=True, text=ZONE, value=ZONE))
        )
        .with_variable(
            dash.CustomVariable("bucket")
            .label("By")
            .values("day,week,month")
            .current(VariableOption(selected=True, text="day", value="day"))
        )
        .with_variable(
            dash.QueryVariable("queue")
            .label("Queue")
            .datasource(DATASOURCE)
            .query(QUEUES_SQL)
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .current(VariableOption(selected=True, text="All", value="$__all"))
        )
        .with_row(dash.Row("Calls (by the day they arrived)"))
        .with_panel(_series(
            "Service level",
            "Answered within the ring target (three rings) of the calls offered, short "
            "abandons out of the base; Asterisk's SL (of answered) and SL2.",
            calls_sql(rates), rates, "percentunit", rate=True))
        .with_panel(_series(
            "Abandonment", "(Abandoned − short abandons) / (offered − short abandons).",
            calls_sql(["abandonment_rate"]), ["abandonment_rate"], "percentunit", rate=True))
        .with_panel(_series(
            "Average speed of answer", "Answer seconds / answered.",
            calls_sql(["asa_seconds"]), ["asa_seconds"], "s"))
        .with_panel(_series(
            "Offered and answered", "Calls offered (not turned away), answered, abandoned.",
            calls_sql(volumes), volumes, "short", bars=True))
        .with_panel(_series(
            "Turned away at arrival",
            "Calls the queue refused because it was closed or nobody was there (not offered).",
            calls_sql(turned_away), turned_away, "short", bars=True))
        .with_panel(queue_table)
        .with_row(dash.Row("Agents' records and complaints (every queue)"))
        .with_panel(_series(
            "Agents' records by category",
            "The agents' records of calls, by the day of the call and category.",
            categories_sql(), list(CATEGORIES), "short", bars=True))
        .with_panel(_series(
            "Complaints", "Complaints received; of them closed, and closed in time.",
            complaints_sql(), list(COMPLAINTS), "short", bars=True)
            .override_by_name("complaints_timeliness_rate", [
                DynamicConfigValue(id_val="unit", value="percentunit"),
                DynamicConfigValue(id_val="custom.axisPlacement", value="right"),
                DynamicConfigValue(id_val="custom.drawStyle", value="line")]))
    )  # fmt: skip
    result: dict[str, object] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return result


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {OUTPUT}\n")
