"""A report as tables: each a section's title, its columns and its rows of plain
values (text, int, float, None for "no figure"). The CSV writes them as they are;
a column's kind says how to show its values (a count, seconds, a rate). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from .labels import label
from .model import RING_BUCKETS, AgentFigures, QueueFigures, Report

__all__ = ["Column", "Table", "tables"]

Value = str | int | float | None


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # its label's key (labels.LABELS)
    kind: str = "count"  # "text", "count", "seconds", "rate", "score"

    @property
    def title(self) -> str:
        return label(self.key)


@dataclass(frozen=True, slots=True)
class Table:
    key: str  # the section's label key
    columns: list[Column]
    rows: list[list[Value]]

    @property
    def title(self) -> str:
        return label(self.key)


_QUEUE_COLUMNS = [
    Column("offered"), Column("answered"), Column("answered_within_target"),
    Column("service_level", "rate"), Column("asterisk_sl", "rate"), Column("asterisk_sl2", "rate"),
    Column("abandoned"), Column("short_abandons"), Column("abandoned_within_target"),
    Column("abandonment_rate", "rate"), Column("asa_seconds", "seconds"),
    Column("longest_wait_seconds", "seconds"), Column("failed"), Column("overflowed"),
    Column("interrupted"), Column("closed"), Column("no_agent"),
]  # fmt: skip


def _queue_row(f: QueueFigures) -> list[Value]:
    return [
        f.offered, f.answered, f.answered_within_target, f.service_level, f.asterisk_sl,
        f.asterisk_sl2, f.abandoned, f.short_abandons, f.abandoned_within_target,
        f.abandonment_rate, f.asa_seconds, f.longest_wait_seconds, f.failed, f.overflowed,
        f.interrupted, f.closed, f.no_agent,
    ]  # fmt: skip


_AGENT_COLUMNS = [
    Column("agent", "text"), Column("name", "text"), Column("handled"), Column("missed"),
    Column("answered_ring_1_2"), Column("aht_seconds", "seconds"),
    Column("talk_mean_seconds", "seconds"), Column("wrap_up_mean_seconds", "seconds"),
    Column("pause_seconds", "seconds"), Column("idle_seconds", "seconds"),
    Column("hung_up_first"), Column("records_missing"), Column("satisfaction_asked"),
    Column("satisfaction_mean", "score"),
]  # fmt: skip


def _agent_row(a: AgentFigures) -> list[Value]:
    return [
        a.agent_id, a.name, a.handled, a.missed, a.answered_ring_1_2, a.aht_seconds,
        a.talk_mean_seconds, a.wrap_up_mean_seconds, a.pause_seconds, a.idle_seconds,
        a.hung_up_first, a.records_missing, a.satisfaction_asked, a.satisfaction_mean,
    ]  # fmt: skip


def _day(d: date) -> str:
    return d.isoformat()


def tables(report: Report) -> list[Table]:
    """The report's sections, in the order every format shows them."""
    p = report.period
    c, cb = report.complaints, report.callbacks
    return [
        Table("title", [Column("period", "text"), Column("time_zone", "text"),
                        Column("generated_at", "text"), Column("notes", "text")],
              [[p.label, p.zone, report.generated_at.astimezone(p.tz).isoformat(timespec="seconds"),
                "; ".join(report.notes) or None]]),
        Table("centre", _QUEUE_COLUMNS, [_queue_row(report.centre)]),
        Table("queues", [Column("queue", "text"), *_QUEUE_COLUMNS],
              [[q.queue, *_queue_row(q)] for q in report.queues]),
        Table("by_day", [Column("day", "text"), *_QUEUE_COLUMNS],
              [[_day(d), *_queue_row(f)] for d, f in report.by_day]),
        Table("by_hour", [Column("hour", "text"), *_QUEUE_COLUMNS],
              [[f"{h:02d}:00", *_queue_row(f)] for h, f in report.by_hour]),
        Table("rings", [Column("ring", "text"), Column("calls")],
              [[str(i + 1) if i + 1 < RING_BUCKETS else f"{RING_BUCKETS}+", n]
               for i, n in enumerate(report.rings)]),
        Table("agents", _AGENT_COLUMNS, [_agent_row(a) for a in report.agents]),
        Table("complaints", [Column("received"), Column("closed_cases"), Column("closed_in_time"),
                             Column("timeliness_rate", "rate"), Column("overdue"),
                             Column("suggestions"), Column("suggestions_answered"),
                             Column("suggestions_adopted"), Column("adoption_rate", "rate")],
              [[c.received, c.closed, c.closed_in_time, c.timeliness_rate, c.overdue,
                c.suggestions, c.suggestions_answered, c.suggestions_adopted, c.adoption_rate]]),
        Table("class", [Column("class", "text"), Column("count")],
              [[label(k), n] for k, n in c.by_class.items()]),
        Table("status", [Column("status", "text"), Column("count")],
              [[label(f"status_{k}"), n] for k, n in c.by_status.items()]),
        Table("callbacks", [Column("abandoned"), Column("reached_same_day"), Column("reached"),
                            Column("expired"), Column("same_day_rate", "rate")],
              [[cb.abandoned, cb.reached_same_day, cb.reached, cb.expired, cb.same_day_rate]]),
        Table("attempts", [Column("outcome", "text"), Column("count")],
              [[label("failed_attempt" if k == "failed" else k), n]
               for k, n in cb.attempts.items()]),
        Table("categories", [Column("category", "text"), Column("count"), Column("previous"),
                             Column("change", "rate")],
              [[label(k.category), k.count, k.previous, k.change] for k in report.categories]),
    ]  # fmt: skip
