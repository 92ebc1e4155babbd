"""A report laid out as tables, once for the workbook and the PDF: which figures
each section shows, in which order, under which label, and of which kind (a
count, a rate, seconds …), so the two formats show the same columns. Pure.

Headings and the names of rows the report names itself (the centre, a class, a
category) are label keys (`labels.LABELS`; a `Key` in a row), not text: each
format prints them in the languages it can (`label`, or `en` without a CJK
font). A key the labels do not know (a class added later) is printed as it is;
a queue's or an agent's name is a plain string, printed as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from .labels import LABELS, label
from .model import RING_BUCKETS, AgentFigures, QueueFigures, Report

__all__ = [
    "QUEUE_COLUMNS",
    "Column",
    "Entry",
    "Key",
    "Kind",
    "Table",
    "Value",
    "agents_table",
    "by_day_table",
    "by_hour_table",
    "callback_attempts_table",
    "callback_entries",
    "categories_by_day_table",
    "categories_table",
    "centre_entries",
    "complaint_class_table",
    "complaint_entries",
    "complaint_status_table",
    "generated_local",
    "header_entries",
    "heading",
    "named_tables",
    "note_text",
    "queue_days_table",
    "queue_hours_table",
    "queues_table",
    "rings_table",
    "sections",
]

#: How a value is shown: ``text`` as it is (a `Key` by its label), ``count`` a
#: whole number, ``seconds`` and ``score`` with decimals, ``rate`` as a
#: percentage, ``date`` a local day, ``time`` a local instant.
Kind = Literal["text", "count", "seconds", "score", "rate", "date", "time"]


@dataclass(frozen=True, slots=True)
class Key:
    """A row's name that is a label key (``centre``, ``ordinary``, ``inquiry``)."""

    key: str


Value = str | int | float | date | datetime | Key | None


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # the heading's label key
    kind: Kind


@dataclass(frozen=True, slots=True)
class Table:
    key: str  # the section's label key
    columns: tuple[Column, ...]
    rows: list[tuple[Value, ...]]


@dataclass(frozen=True, slots=True)
class Entry:
    """One named figure of a list (the centre's, the complaints', the call-backs')."""

    key: str
    value: Value
    kind: Kind


def heading(key: str, text: Callable[[str], str]) -> str:
    """The label of `key` by `text` (`labels.label`, `zh`, `en`), or the key itself."""
    return text(key) if key in LABELS else key


# The figures of a queue (or the centre, a day, an hour), in the order every table shows them.
_QUEUE: tuple[tuple[str, Kind, Callable[[QueueFigures], Value]], ...] = (
    ("offered", "count", lambda q: q.offered),
    ("answered", "count", lambda q: q.answered),
    ("answered_within_target", "count", lambda q: q.answered_within_target),
    ("service_level", "rate", lambda q: q.service_level),
    ("asterisk_sl", "rate", lambda q: q.asterisk_sl),
    ("asterisk_sl2", "rate", lambda q: q.asterisk_sl2),
    ("abandoned", "count", lambda q: q.abandoned),
    ("short_abandons", "count", lambda q: q.short_abandons),
    ("abandoned_within_target", "count", lambda q: q.abandoned_within_target),
    ("abandonment_rate", "rate", lambda q: q.abandonment_rate),
    ("asa_seconds", "seconds", lambda q: q.asa_seconds),
    ("longest_wait_seconds", "seconds", lambda q: q.longest_wait_seconds),
    ("failed", "count", lambda q: q.failed),
    ("overflowed", "count", lambda q: q.overflowed),
    ("interrupted", "count", lambda q: q.interrupted),
    ("closed", "count", lambda q: q.closed),
    ("no_agent", "count", lambda q: q.no_agent),
)
QUEUE_COLUMNS: tuple[Column, ...] = tuple(Column(key, kind) for key, kind, _ in _QUEUE)

_AGENT: tuple[tuple[str, Kind, Callable[[AgentFigures], Value]], ...] = (
    ("agent", "text", lambda a: a.agent_id),
    ("name", "text", lambda a: a.name),
    ("handled", "count", lambda a: a.handled),
    ("missed", "count", lambda a: a.missed),
    ("answered_ring_1_2", "count", lambda a: a.answered_ring_1_2),
    ("aht_seconds", "seconds", lambda a: a.aht_seconds),
    ("talk_mean_seconds", "seconds", lambda a: a.talk_mean_seconds),
    ("wrap_up_mean_seconds", "seconds", lambda a: a.wrap_up_mean_seconds),
    ("pause_seconds", "seconds", lambda a: a.pause_seconds),
    ("idle_seconds", "seconds", lambda a: a.idle_seconds),
    ("hung_up_first", "count", lambda a: a.hung_up_first),
    ("records_missing", "count", lambda a: a.records_missing),
    ("satisfaction_asked", "count", lambda a: a.satisfaction_asked),
    ("satisfaction_mean", "score", lambda a: a.satisfaction_mean),
)

# A complaint's status and a call-back attempt's outcome whose label key is not the value itself.
_STATUS_KEYS = {
    s: f"status_{s.replace('-', '_')}"
    for s in ("received", "classified", "investigated", "correcting", "called-back", "closed")
}
_OUTCOME_KEYS = {"failed": "failed_attempt"}


def _queue_table(
    key: str, leading: tuple[Column, ...], rows: list[tuple[tuple[Value, ...], QueueFigures]]
) -> Table:
    """A row per (what it is of, figures): the `leading` columns, then the figures."""
    return Table(
        key,
        (*leading, *QUEUE_COLUMNS),
        [(*of, *(get(q) for _, _, get in _QUEUE)) for of, q in rows],
    )


def queues_table(report: Report) -> Table:
    """Each queue, then the centre."""
    rows: list[tuple[tuple[Value, ...], QueueFigures]] = [((q.queue,), q) for q in report.queues]
    rows.append(((Key("centre"),), report.centre))
    return _queue_table("queues", (Column("queue", "text"),), rows)


def by_day_table(report: Report) -> Table:
    rows = [((day,), q) for day, q in report.by_day]
    return _queue_table("by_day", (Column("day", "date"),), list(rows))


def by_hour_table(report: Report) -> Table:
    rows = [((hour,), q) for hour, q in report.by_hour]
    return _queue_table("by_hour", (Column("hour", "count"),), list(rows))


def queue_days_table(report: Report) -> Table:
    """Each queue's days, queue after queue."""
    rows = [((queue, day), q) for queue, day, q in report.queue_days]
    return _queue_table(
        "queue_days", (Column("queue", "text"), Column("day", "date")), list(rows)
    )


def queue_hours_table(report: Report) -> Table:
    """Each queue's hours of the day, queue after queue."""
    rows = [((queue, hour), q) for queue, hour, q in report.queue_hours]
    return _queue_table(
        "queue_hours", (Column("queue", "text"), Column("hour", "count")), list(rows)
    )


def rings_table(report: Report) -> Table:
    """Answered calls by the ring of the answer: 1 … 6 as numbers, then ``7+``."""
    rows: list[tuple[Value, ...]] = []
    for i, n in enumerate(report.rings[:RING_BUCKETS]):
        ring: Value = i + 1 if i + 1 < RING_BUCKETS else f"{RING_BUCKETS}+"
        rows.append((ring, n))
    return Table("rings", (Column("ring", "count"), Column("calls", "count")), rows)


def agents_table(report: Report) -> Table:
    return Table(
        "agents",
        tuple(Column(key, kind) for key, kind, _ in _AGENT),
        [tuple(get(a) for _, _, get in _AGENT) for a in report.agents],
    )


def categories_table(report: Report) -> Table:
    return Table(
        "categories",
        (
            Column("category", "text"),
            Column("count", "count"),
            Column("previous", "count"),
            Column("change", "rate"),
        ),
        [(Key(c.category), c.count, c.previous, c.change) for c in report.categories],
    )


def categories_by_day_table(report: Report) -> Table:
    """The records by category on each local day of the period (the trend): a
    column a category, in the order the report names them."""
    names = list(dict.fromkeys(c for _, counts in report.categories_by_day for c in counts))
    return Table(
        "categories_by_day",
        (Column("day", "date"), *(Column(c, "count") for c in names)),
        [(d, *(counts.get(c, 0) for c in names)) for d, counts in report.categories_by_day],
    )


def _counts(key: str, first: str, counts: dict[str, int], keys: dict[str, str]) -> Table:
    """A count per name (a class, a status, an outcome), each named by its label key."""
    return Table(
        key,
        (Column(first, "text"), Column("count", "count")),
        [(Key(keys.get(name, name)), n) for name, n in counts.items()],
    )


def complaint_class_table(report: Report) -> Table:
    return _counts("complaints", "class", report.complaints.by_class, {})


def complaint_status_table(report: Report) -> Table:
    return _counts("complaints", "status", report.complaints.by_status, _STATUS_KEYS)


def callback_attempts_table(report: Report) -> Table:
    return _counts("attempts", "outcome", report.callbacks.attempts, _OUTCOME_KEYS)


def generated_local(report: Report) -> datetime:
    """When the report was made, in the period's time zone, without the zone (as a
    workbook keeps instants; the zone is printed beside it)."""
    return report.generated_at.astimezone(report.period.tz).replace(tzinfo=None, microsecond=0)


def header_entries(report: Report) -> list[Entry]:
    return [
        Entry("period", report.period.label, "text"),
        Entry("time_zone", report.period.zone, "text"),
        Entry("generated_at", generated_local(report), "time"),
    ]


def centre_entries(report: Report) -> list[Entry]:
    """The centre's calls, then its satisfaction (the agents' records summed)."""
    c = report.centre
    return [
        *(Entry(key, get(c), kind) for key, kind, get in _QUEUE),
        Entry("satisfaction_asked", report.satisfaction_asked, "count"),
        Entry("satisfaction_scored", report.satisfaction_scored, "count"),
        Entry("satisfaction_mean", report.satisfaction_mean, "score"),
    ]


def complaint_entries(report: Report) -> list[Entry]:
    c = report.complaints
    return [
        Entry("received", c.received, "count"),
        Entry("closed_cases", c.closed, "count"),
        Entry("closed_in_time", c.closed_in_time, "count"),
        Entry("timeliness_rate", c.timeliness_rate, "rate"),
        Entry("overdue", c.overdue, "count"),
        Entry("suggestions", c.suggestions, "count"),
        Entry("suggestions_answered", c.suggestions_answered, "count"),
        Entry("suggestions_adopted", c.suggestions_adopted, "count"),
        Entry("adoption_rate", c.adoption_rate, "rate"),
    ]


def callback_entries(report: Report) -> list[Entry]:
    c = report.callbacks
    return [
        Entry("abandoned", c.abandoned, "count"),
        Entry("reached_same_day", c.reached_same_day, "count"),
        Entry("reached", c.reached, "count"),
        Entry("expired", c.expired, "count"),
        Entry("same_day_rate", c.same_day_rate, "rate"),
    ]


def sections(report: Report) -> list[Table]:
    """The columnar tables in the order both formats print them."""
    return [
        queues_table(report),
        by_day_table(report),
        by_hour_table(report),
        queue_days_table(report),
        queue_hours_table(report),
        rings_table(report),
        agents_table(report),
        complaint_class_table(report),
        complaint_status_table(report),
        callback_attempts_table(report),
        categories_table(report),
        categories_by_day_table(report),
    ]


def note_text(note: str, text: Callable[[str], str]) -> str:
    """A note of `Report.notes` ("key" or "key:value") in words, by `text`."""
    key, _, value = note.partition(":")
    return heading(key, text).replace("{value}", value) if key in LABELS else note


def _one_row(key: str, entries: list[Entry]) -> Table:
    columns = tuple(Column(e.key, e.kind) for e in entries)
    return Table(key, columns, [tuple(e.value for e in entries)])


def named_tables(report: Report) -> list[tuple[str, Table]]:
    """Every section as a table with a name of its own, for the formats that print
    tables only (CSV, JSON): the header, the centre's, the complaints' and the
    call-backs' figures as one row each, then `sections`."""
    notes = "; ".join(note_text(n, label) for n in report.notes) or None
    period, zone, _ = header_entries(report)
    # With its zone's offset here (the workbook's has none): ISO 8601 in these formats.
    generated = Entry("generated_at", report.generated_at.astimezone(report.period.tz), "time")
    header = [period, zone, generated, Entry("notes", notes, "text")]
    names = {"complaints": ("complaints_by_class", "complaints_by_status")}
    out: list[tuple[str, Table]] = [
        ("title", _one_row("title", header)),
        ("centre", _one_row("centre", centre_entries(report))),
        ("complaint_figures", _one_row("complaints", complaint_entries(report))),
        ("callbacks", _one_row("callbacks", callback_entries(report))),
    ]
    seen: dict[str, int] = {}
    for table in sections(report):
        n = seen.get(table.key, 0)
        seen[table.key] = n + 1
        out.append((names[table.key][n] if table.key in names else table.key, table))
    return out
