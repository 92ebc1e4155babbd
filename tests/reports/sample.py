"""Hand-built reports for the renderers' tests: `sample()` with two queues, four
days across the end of a month, three agents (one who did nothing, so their
rates are None), complaints, call-backs and the categories by day; `empty()` a
period with no call."""

from __future__ import annotations

from datetime import UTC, date, datetime

from callcenter.reports.model import (
    AgentFigures,
    CallbackFigures,
    CategoryFigures,
    ComplaintFigures,
    QueueFigures,
    Report,
)
from callcenter.reports.period import Period, days

ZONE = "Asia/Shanghai"
PERIOD = days(date(2026, 10, 30), date(2026, 11, 2), ZONE)  # "2026-10-30..2026-11-02"
GENERATED = datetime(2026, 11, 3, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai

HOTLINE = QueueFigures(
    "hotline", offered=120, answered=100, answered_within_target=90, abandoned=15,
    short_abandons=5, abandoned_within_target=8, failed=3, overflowed=2, closed=4,
    no_agent=1, answer_seconds=800.0, longest_wait_seconds=95.5,
)  # fmt: skip
REPAIR = QueueFigures(
    "repair", offered=30, answered=20, answered_within_target=12, abandoned=8,
    short_abandons=2, abandoned_within_target=3, failed=1, overflowed=1, interrupted=1,
    answer_seconds=300.0, longest_wait_seconds=130.0,
)  # fmt: skip
CENTRE = QueueFigures(
    "", offered=150, answered=120, answered_within_target=102, abandoned=23,
    short_abandons=7, abandoned_within_target=11, failed=4, overflowed=3, interrupted=1,
    closed=4, no_agent=1, answer_seconds=1100.0, longest_wait_seconds=130.0,
)  # fmt: skip

BY_DAY = [
    (date(2026, 10, 30), QueueFigures("", offered=50, answered=40, answered_within_target=36,
                                      abandoned=8, short_abandons=3, answer_seconds=360.0)),
    (date(2026, 10, 31), QueueFigures("", offered=60, answered=50, answered_within_target=44,
                                      abandoned=9, short_abandons=3, answer_seconds=450.0)),
    (date(2026, 11, 1), QueueFigures("", offered=40, answered=30, answered_within_target=22,
                                     abandoned=6, short_abandons=1, answer_seconds=290.0)),
    (date(2026, 11, 2), QueueFigures("")),  # no call: its rates are None
]  # fmt: skip

BY_HOUR = [
    (h, QueueFigures("")) for h in range(24)
]
BY_HOUR[9] = (9, QueueFigures("", offered=70, answered=60, answered_within_target=52,
                              abandoned=8, short_abandons=3, answer_seconds=500.0))  # fmt: skip
BY_HOUR[14] = (14, QueueFigures("", offered=80, answered=60, answered_within_target=50,
                                abandoned=15, short_abandons=4, answer_seconds=600.0))  # fmt: skip

# Each queue's days and hours (they sum to the queue's offered and answered).
QUEUE_DAYS = [
    ("hotline", d, QueueFigures("hotline", offered=o, answered=a, answered_within_target=w))
    for d, o, a, w in ((date(2026, 10, 30), 40, 33, 30), (date(2026, 10, 31), 45, 38, 34),
                       (date(2026, 11, 1), 35, 29, 26), (date(2026, 11, 2), 0, 0, 0))
] + [
    ("repair", d, QueueFigures("repair", offered=o, answered=a, answered_within_target=w))
    for d, o, a, w in ((date(2026, 10, 30), 10, 7, 6), (date(2026, 10, 31), 15, 12, 4),
                       (date(2026, 11, 1), 5, 1, 2), (date(2026, 11, 2), 0, 0, 0))
]  # fmt: skip
QUEUE_HOURS = [
    (queue, h, QueueFigures(queue, offered=n.get(h, 0)))
    for queue, n in (("hotline", {9: 55, 14: 65}), ("repair", {9: 15, 14: 15}))
    for h in range(24)
]

AGENTS = [
    AgentFigures(
        "1001", "张伟", handled=70, missed=3, answered_ring_1_2=60, finished=70,
        talk_seconds=12600.0, wrap_up_seconds=2100.0, wrap_ups=70, pause_seconds=3600.0,
        idle_seconds=7200.0, hung_up_first=2, records_missing=1, satisfaction_asked=40,
        satisfaction_scored=35, satisfaction_sum=160,
    ),
    AgentFigures(
        "1002", "Li Na", handled=50, missed=0, answered_ring_1_2=41, finished=50,
        talk_seconds=7500.0, wrap_up_seconds=1500.0, wrap_ups=48, pause_seconds=1800.0,
        idle_seconds=9000.0, satisfaction_asked=10, satisfaction_scored=8, satisfaction_sum=36,
    ),
    AgentFigures("1003", "王芳"),  # on the roster, took no call
]  # fmt: skip

COMPLAINTS = ComplaintFigures(
    received=6,
    by_class={"ordinary": 3, "serious": 1, "invalid": 1, "valid": 1, "other-unit": 0},
    by_status={"received": 1, "classified": 1, "investigated": 0, "correcting": 1,
               "called-back": 0, "closed": 3},
    closed=3, closed_in_time=2, overdue=1,
    suggestions=4, suggestions_answered=3, suggestions_adopted=1,
)  # fmt: skip

CALLBACKS = CallbackFigures(
    abandoned=16, reached_same_day=9, reached=12, expired=2,
    attempts={"reached": 12, "no-answer": 7, "busy": 2, "wrong-number": 1, "declined": 0,
              "failed": 1},
)  # fmt: skip

CATEGORIES = [
    CategoryFigures("inquiry", 80, 64),  # +25 %
    CategoryFigures("complaint", 6, 8),  # −25 %
    CategoryFigures("suggestion", 4, 0),  # no base: None
    CategoryFigures("repair", 25, 20),
    CategoryFigures("other", 5, 5),
]

# The same records by local day (the trend): each category's days sum to its count.
CATEGORIES_BY_DAY = [
    (date(2026, 10, 30), {"inquiry": 30, "complaint": 2, "suggestion": 1, "repair": 10, "other": 2}),
    (date(2026, 10, 31), {"inquiry": 35, "complaint": 3, "suggestion": 2, "repair": 10, "other": 2}),
    (date(2026, 11, 1), {"inquiry": 15, "complaint": 1, "suggestion": 1, "repair": 5, "other": 1}),
    (date(2026, 11, 2), {"inquiry": 0, "complaint": 0, "suggestion": 0, "repair": 0, "other": 0}),
]  # fmt: skip


def sample() -> Report:
    return Report(
        period=PERIOD,
        generated_at=GENERATED,
        centre=CENTRE,
        queues=[HOTLINE, REPAIR],
        by_day=list(BY_DAY),
        by_hour=list(BY_HOUR),
        rings=[50, 30, 22, 10, 5, 2, 1],
        agents=list(AGENTS),
        complaints=COMPLAINTS,
        callbacks=CALLBACKS,
        categories=list(CATEGORIES),
        notes=["the period is not over yet"],
        categories_by_day=[(d, dict(n)) for d, n in CATEGORIES_BY_DAY],
        queue_days=list(QUEUE_DAYS),
        queue_hours=list(QUEUE_HOURS),
    )


_NAMES = ("inquiry", "complaint", "suggestion", "repair", "other")


def empty(period: Period = PERIOD) -> Report:
    """A period in which nothing happened: every count 0, every rate None."""
    return Report(
        period=period,
        generated_at=GENERATED,
        centre=QueueFigures(""),
        queues=[],
        by_day=[(d, QueueFigures("")) for d in period.days],
        by_hour=[(h, QueueFigures("")) for h in range(24)],
        rings=[0] * 7,
        agents=[],
        complaints=ComplaintFigures(0, {}, {}, 0, 0, 0, 0, 0, 0),
        callbacks=CallbackFigures(0, 0, 0, 0, {}),
        categories=[CategoryFigures(c, 0, 0) for c in _NAMES],
        categories_by_day=[(d, dict.fromkeys(_NAMES, 0)) for d in period.days],
    )  # fmt: skip
