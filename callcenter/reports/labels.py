"""Every heading a report prints, in Chinese and English: ``"中文 / English"`` by
`label`, or one language by `zh`/`en`. One table, so the CSV, the workbook and
the PDF name each figure alike. Pure."""

from __future__ import annotations

from typing import Final

__all__ = ["LABELS", "en", "label", "zh"]

LABELS: Final[dict[str, tuple[str, str]]] = {
    # the report
    "title": ("热线服务统计报表", "Hotline service report"),
    "period": ("统计期间", "Period"),
    "time_zone": ("时区", "Time zone"),
    "generated_at": ("生成时间", "Generated at"),
    "notes": ("说明", "Notes"),
    # notes (Report.notes: a key, or "key:value" with the value in place of {value})
    "period-not-over": (
        "统计期间尚未结束，数字截至生成时间", "The period is not over: figures as of its making"
    ),
    "callbacks-zone": (
        "放弃来电回拨按 {value} 时区的日期统计", "Call-backs are counted on the days of {value}"
    ),
    "summary": ("汇总", "Summary"),
    "figure": ("指标", "Figure"),
    "value": ("数值", "Value"),
    # sections
    "centre": ("全中心", "Whole centre"),
    "queues": ("队列统计", "By queue"),
    "by_day": ("每日统计", "By day"),
    "by_hour": ("分时统计", "By hour of day"),
    "queue_days": ("队列每日统计", "By queue and day"),
    "queue_hours": ("队列分时统计", "By queue and hour of day"),
    "rings": ("应答振铃次数分布", "Answer time in rings"),
    "agents": ("坐席统计", "By agent"),
    "complaints": ("投诉与建议", "Complaints and suggestions"),
    "callbacks": ("放弃来电回拨", "Abandoned callers called back"),
    "categories": ("来电类别", "Calls by category"),
    "categories_by_day": ("来电类别每日趋势", "Calls by category by day"),
    # queue figures
    "queue": ("队列", "Queue"),
    "day": ("日期", "Day"),
    "hour": ("时段", "Hour"),
    "offered": ("呼入量", "Offered"),
    "answered": ("接通量", "Answered"),
    "answered_within_target": ("三声内接听", "Answered within three rings"),
    "service_level": ("三声接听率", "Service level (three rings)"),
    "asterisk_sl": ("Asterisk SL", "Asterisk SL"),
    "asterisk_sl2": ("Asterisk SL2", "Asterisk SL2"),
    "abandoned": ("放弃量", "Abandoned"),
    "short_abandons": ("短时放弃", "Short abandons"),
    "abandoned_within_target": ("三声内放弃", "Abandoned within three rings"),
    "abandonment_rate": ("放弃率", "Abandonment rate"),
    "asa_seconds": ("平均应答时间(秒)", "ASA (s)"),
    "longest_wait_seconds": ("最长等待(秒)", "Longest wait (s)"),
    "failed": ("失败呼叫", "Failed"),
    "overflowed": ("溢出", "Overflowed"),
    "interrupted": ("中断", "Interrupted"),
    "closed": ("非工作时间", "Closed"),
    "no_agent": ("无坐席", "No agent"),
    "ring": ("振铃次数", "Ring"),
    "calls": ("来电数", "Calls"),
    # agent figures
    "agent": ("坐席", "Agent"),
    "name": ("姓名", "Name"),
    "handled": ("接听量", "Handled"),
    "missed": ("未接", "Missed"),
    "answered_ring_1_2": ("一二声内接听", "Answered at ring 1-2"),
    "aht_seconds": ("平均处理时长(秒)", "AHT (s)"),
    "talk_mean_seconds": ("平均通话(秒)", "Average talk (s)"),
    "wrap_up_mean_seconds": ("平均话后处理(秒)", "Average wrap-up (s)"),
    "pause_seconds": ("示忙时长(秒)", "Not ready (s)"),
    "idle_seconds": ("空闲时长(秒)", "Idle (s)"),
    "hung_up_first": ("坐席先挂机", "Hung up before the caller"),
    "records_missing": ("未填记录", "Records missing"),
    "satisfaction_asked": ("满意度询问", "Satisfaction asked"),
    "satisfaction_scored": ("满意度已评分", "Satisfaction scored"),
    "satisfaction_mean": ("满意度均分", "Satisfaction (mean)"),
    # complaints
    "received": ("受理量", "Received"),
    "class": ("类别", "Class"),
    "status": ("状态", "Status"),
    "count": ("数量", "Count"),
    "closed_cases": ("已办结", "Closed"),
    "closed_in_time": ("按时办结", "Closed in time"),
    "timeliness_rate": ("办结及时率", "Timeliness rate"),
    "overdue": ("超期", "Overdue"),
    "suggestions": ("建议", "Suggestions"),
    "suggestions_answered": ("已答复建议", "Suggestions answered"),
    "suggestions_adopted": ("已采纳建议", "Suggestions adopted"),
    "adoption_rate": ("采纳率", "Adoption rate"),
    "ordinary": ("一般投诉", "Ordinary"),
    "serious": ("重大投诉", "Serious"),
    "invalid": ("无效投诉", "Invalid"),
    "valid": ("有效投诉", "Valid"),
    "other-unit": ("其他单位", "Other unit"),
    "open": ("处理中", "Open"),
    "status_received": ("已受理", "Received"),
    "status_classified": ("已定性", "Classified"),
    "status_investigated": ("已调查", "Investigated"),
    "status_correcting": ("整改中", "Correcting"),
    "status_called_back": ("已回访", "Called back"),
    "status_closed": ("已办结", "Closed"),
    # call-backs
    "reached_same_day": ("当日回拨成功", "Reached the same day"),
    "reached": ("回拨成功", "Reached"),
    "expired": ("过期", "Expired"),
    "failed_attempt": ("未能拨出", "Could not be placed"),
    "same_day_rate": ("当日回拨率", "Same-day rate"),
    "attempts": ("回拨尝试", "Attempts"),
    "outcome": ("结果", "Outcome"),
    "no-answer": ("无人接听", "No answer"),
    "busy": ("忙", "Busy"),
    "wrong-number": ("号码错误", "Wrong number"),
    "declined": ("客户拒绝", "Declined"),
    # categories
    "category": ("类别", "Category"),
    "previous": ("上期", "Previous period"),
    "change": ("环比", "Change"),
    "inquiry": ("咨询", "Inquiry"),
    "complaint": ("投诉", "Complaint"),
    "suggestion": ("建议", "Suggestion"),
    "repair": ("报修", "Repair"),
    "other": ("其他", "Other"),
}


def zh(key: str) -> str:
    return LABELS[key][0]


def en(key: str) -> str:
    return LABELS[key][1]


def label(key: str) -> str:
    """``"中文 / English"``; a key with the same text in both once."""
    cn, english = LABELS[key]
    return cn if cn == english else f"{cn} / {english}"
