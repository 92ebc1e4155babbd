// Chinese and English texts for the desktop pages. Chinese by default when the
// browser asks for it; the choice is kept in localStorage.
const TEXTS = {
  zh: {
    title_agent: "客服坐席", title_supervisor: "班长监控台", login: "登录", logout: "退出",
    floor_roles_only: "仅班组长、主管和经理可查看监控台",
    session_ended: "登录已失效（已退出、已过期或密码已重置），请重新登录",
    user: "工号", password: "密码", state: "状态", ready: "就绪", not_ready: "未就绪",
    wrap_up: "话后整理", end_wrap_up: "结束整理", reason: "原因", offline: "离线",
    reserved: "预占", ringing: "振铃中", "on-call": "通话中", "wrap-up": "话后整理", "not-ready": "未就绪",
    caller: "来电号码", customer: "客户", unknown_caller: "未知客户", vip: "VIP", notes: "备注",
    recent_calls: "最近来电", open_complaints: "未结投诉", follow_ups: "待回访",
    ring: "振铃", greeting: "问候语", no_call: "暂无来电",
    form: "来电记录", caller_name: "来电人", address: "地址", called_at: "来电时间",
    service_requested: "服务内容", appointment_at: "预约时间", contact: "联系方式",
    special_requests: "特殊要求", category: "类别", inquiry: "咨询", complaint: "投诉",
    suggestion: "建议", repair: "报修", other: "其他", complaint_matter: "投诉事项",
    complaint_occurred_at: "发生时间", satisfaction_asked: "已询问满意度", satisfaction_score: "满意度评分",
    read_back_done: "已复述要点", save: "保存", saved: "已保存", not_saved: "未保存",
    transfer: "转接", to_queue: "转队列", to_agent: "转坐席", hung_up_by: "先挂机",
    dial: "外呼", dial_agent_ringing: "正在振铃您的话机", dial_calling_customer: "正在呼叫客户",
    dial_customer_ringing: "客户话机振铃中", dial_connected: "已接通", dial_reached: "通话结束",
    dial_no_answer: "无人接听", dial_busy: "客户忙", dial_declined: "客户拒接", dial_failed: "呼叫失败",
    dial_agent_no_answer: "您的话机未应答",
    preview_title: "回拨客户", preview_call: "拨打", preview_skip: "跳过",
    agents: "坐席", queues: "队列", waiting: "排队", longest_wait: "最长等待",
    alerts: "告警", breach: "超过三声未接", set_state: "设置状态", language: "English",
    offered_today: "今日来电", sl_today: "今日三声接通率", sl_15m: "15分钟接通率", sl_30m: "30分钟接通率",
    sl_60m: "60分钟接通率", abandon_rate: "放弃率", asa: "平均应答时间", waiting_callers: "排队来电",
    status_closed: "非工作时间", status_no_agent: "无坐席", turned_away: "非工作时间 / 无坐席",
    queue: "队列", wait: "等待", in_state: "状态时长", current_call: "当前通话", handled: "今日接听",
    missed: "未接", pause_time: "小休时长", idle_time: "空闲时长", today_since: "今日统计自",
    more_waiting: "另有 {n} 位排队",
    closing: "结束语", correct: "更正", customer_name: "姓名", send_correction: "保存更正", cancel: "取消",
    corrected: "已更正", records_pending: "待填记录的来电", no_records: "每通来电均已记录",
    without_call: "无来电记录", draft: "草稿", saving: "保存中…", retrying: "未能保存，正在重试",
    draft_not_kept: "草稿未能保存在本机", ended: "已结束", not_answered: "未接听", by_caller: "来电人",
    by_agent: "坐席", answered_at_ring: "第 {n} 声接听", base_prices: "基本价格（请向来电人说明）",
    base_price: "基本价格", complaint_class: "投诉类别", class_ordinary: "普通投诉", class_serious: "严重投诉",
    class_invalid: "无效投诉", class_valid: "有效投诉", "class_other-unit": "涉及其他单位",
    promise_due_at: "承诺答复时间", promise_text: "答复事项", promise_needs_both: "承诺答复需填写时间和事项",
    new_call_kept: "新来电：刚才填写的记录已保存为草稿，在左侧列表中",
    read_back: "复述…", read_back_title: "向来电人复述要点", read_back_confirm: "已复述", close: "关闭",
    keys_hint: "Alt+R 就绪 · Alt+N 未就绪 · Alt+S 保存 · Alt+B 复述 · Alt+1…9 选记录 · Alt+M 我的今天",
    my_day: "我的今天", refresh: "刷新", aht: "平均处理时长", without_record: "未填记录", time: "时间",
    outcome: "结果", talk: "通话时长", record: "记录", record_saved: "已记录", record_missing: "未记录 · 打开",
    day_none: "今天还没有来电", day_unavailable: "暂时无法读取今天的记录",
    outcome_answered: "已接听", outcome_missed: "未接（振铃超时）", outcome_declined: "已拒接", outcome_busy: "忙线",
    outcome_unreachable: "无法接通", outcome_cancelled: "来电人已挂断", "outcome_answered-elsewhere": "他人已接",
    outcome_error: "出错", outcome_interrupted: "服务中断", outcome_refused: "话机被PBX拒绝",
    // the complaints page, the board's overdue complaints, the pop's complaints
    suggestions_tab: "建议", replies_tab: "承诺答复", pick_one_case: "请在列表中选择一项",
    status_recorded: "已记录", status_assessed: "已评估", status_forwarded: "已转交", status_answered: "已答复",
    status_open: "待办", status_done: "已完成", act_assess: "评估", act_forward: "转交", act_answer: "答复客户",
    act_reschedule: "改期", act_reply: "已答复", feasible: "可行", valuable: "有价值", forward_to: "转交部门",
    adopted: "已采纳", answer: "答复内容", to: "转交部门", text: "建议内容", suggester: "建议人",
    forwarded_to: "转交部门", answered_at: "答复时间", done_at: "完成时间", done_by: "完成人", kind: "类型",
    complaint_id: "投诉", customer_id: "客户", follow_up: "承诺答复", n_items: "共 {n} 项",
    change_assess: "评估", change_forward: "转交", change_answer: "答复客户", change_reschedule: "改期",
    change_reply: "已答复", due: "到期",
    // the call-back worklist (docs/callbacks.md)
    callbacks_tab: "回拨", callback: "回拨", due_now: "现在可拨", act_attempts: "记录回拨", act_call: "用我的话机拨打", calling: "正在拨打…", call_placed: "您的话机将先振铃，接听后拨打 {number}；结果自动记入此项",
    agent_id: "坐席", number: "号码", owed_since: "待回拨自", abandons: "放弃次数", assigned_to: "分配给",
    attempts: "已拨次数", next_attempt_at: "下次可拨", expires_at: "失效时间", closed_as: "结果",
    call_id: "通话", previous: "原分配", status_expired: "已失效",
    cbkind_abandoned: "放弃来电", "cbkind_call-back": "投诉回访", cbkind_reply: "承诺答复",
    outcome_cb_reached: "已联系上", "outcome_cb_no-answer": "无人接听", outcome_cb_busy: "占线",
    "outcome_cb_wrong-number": "号码错误", outcome_cb_declined: "客户拒绝", outcome_cb_failed: "未能拨出",
    "outcome_cb_answered-again": "客户再次来电已接通", outcome_cb_done: "已在工单中完成",
    change_attempt: "回拨", change_close: "关闭", change_expire: "失效",
    status: "状态", matter: "投诉事项", class: "类别", title_complaints: "投诉处理", worklist: "投诉工作单", intake: "登记投诉", to_board: "班长监控台",
    complaints_link: "投诉工作单", overdue_complaints: "超期投诉", overdue_none: "没有超期投诉",
    overdue_more: "全部 {n} 件超期投诉…", overdue_unavailable: "暂时无法读取投诉",
    callbacks_owed: "待回拨来电人", callbacks_open: "回拨工作单", callbacks_none: "没有待回拨的来电人",
    callbacks_oldest: "最早一位已等待 {span}", callbacks_unavailable: "暂时无法读取回拨工作单",
    reports: "统计报表", report_period: "统计期间（2026-11 或 2026-Q4）", report_format: "格式", report_get: "下载",
    reports_monthly: "每月报表", reports_none: "还没有每月报表", reports_unavailable: "暂时无法读取报表",
    reports_refused: "报表仅限主管、质检和经理", report_making: "正在生成报表…",
    status_received: "已受理", status_classified: "已分类", status_investigated: "已调查",
    status_correcting: "整改中", "status_called-back": "已回访", status_closed: "已结案",
    owner: "负责人", due_today: "今日到期", overdue: "超期", open_only: "仅未结", apply: "查询", any: "全部",
    deadline: "期限", pick_one: "请在列表中选择一件投诉", loading: "读取中…", n_complaints: "共 {n} 件",
    first_500: "仅显示前 500 件", open_complaint: "打开投诉", received_at: "受理时间", met_at: "已按时限处理于",
    reported_by: "登记人", from_call: "来电记录", complainant: "投诉人", closed_at: "结案时间",
    act_assign: "指派", act_classify: "分类 / 重新分类", act_investigation: "调查", act_corrective: "整改措施",
    act_check: "整改验证", act_call_back: "回访", act_close: "结案",
    do_assign: "指派", do_classify: "分类", do_record: "记录", do_close: "结案", do_log: "登记投诉",
    findings: "调查结果", investigated_by: "调查人", by: "调查人", on_site: "现场调查", action_text: "整改措施",
    action: "整改措施", due_at: "完成期限", effective: "有效", not_effective: "无效", not_checked: "尚未验证",
    reached: "已联系上", satisfied: "满意", not_satisfied: "不满意", not_asked: "未询问", words: "客户原话",
    customer_words: "客户原话", yes: "是", no: "否", history: "处理记录", who: "操作人", what: "操作", details: "内容",
    change_receive: "受理", change_assign: "指派", change_classify: "分类", change_investigate: "调查",
    change_correct: "整改措施", change_check: "整改验证", "change_call-back": "回访（已联系上）",
    "change_call-back-missed": "回访（未联系上）", change_close: "结案",
    done_change: "已记录：{change}", logged_as: "已登记为第 {id} 号投诉，期限 {deadline}",
    intake_title: "登记非来电投诉", intake_note: "任何员工均可登记：投诉统一由客服中心受理（SOP 004 §3.1）。",
    refused_network: "无法连接服务", refused_400: "内容有误", refused_403: "无权操作", refused_404: "找不到",
    refused_409: "不能执行", refused_503: "数据库暂不可用", refused_other: "出错",
    why_state: "{state}的投诉不能{change}", why_needs_action: "{class}须先记录整改措施才能结案",
    why_not_checked: "整改措施尚未验证", why_no_action: "没有可验证的整改措施", why_supervisors: "仅限班长",
  },
  en: {
    title_agent: "Agent desktop", title_supervisor: "Supervisor board", login: "Log in", logout: "Log out",
    floor_roles_only: "team leaders, supervisors and managers only",
    session_ended: "Your session has ended (logged out, expired or password reset): log in again",
    user: "Agent id", password: "Password", state: "State", ready: "Ready", not_ready: "Not ready",
    wrap_up: "Wrap-up", end_wrap_up: "End wrap-up", reason: "Reason", offline: "Offline",
    reserved: "Reserved", ringing: "Ringing", "on-call": "On call", "wrap-up": "Wrap-up", "not-ready": "Not ready",
    caller: "Caller", customer: "Customer", unknown_caller: "Unknown caller", vip: "VIP", notes: "Notes",
    recent_calls: "Recent calls", open_complaints: "Open complaints", follow_ups: "Follow-ups due",
    ring: "Ring", greeting: "Greeting", no_call: "No call",
    form: "Call form", caller_name: "Caller name", address: "Address", called_at: "Time of call",
    service_requested: "Service requested", appointment_at: "Appointment", contact: "Contact",
    special_requests: "Special requests", category: "Category", inquiry: "Inquiry", complaint: "Complaint",
    suggestion: "Suggestion", repair: "Repair", other: "Other", complaint_matter: "Complaint: the matter",
    complaint_occurred_at: "When it happened", satisfaction_asked: "Satisfaction asked", satisfaction_score: "Score",
    read_back_done: "Read back done", save: "Save", saved: "Saved", not_saved: "Not saved",
    transfer: "Transfer", to_queue: "To queue", to_agent: "To agent", hung_up_by: "Hung up first",
    dial: "Call", dial_agent_ringing: "ringing your phone", dial_calling_customer: "calling the customer",
    dial_customer_ringing: "customer's phone ringing", dial_connected: "connected", dial_reached: "call ended",
    dial_no_answer: "no answer", dial_busy: "the customer's line is busy", dial_declined: "the customer declined the call",
    dial_failed: "the call could not be placed", dial_agent_no_answer: "your phone did not answer",
    preview_title: "Call back", preview_call: "Call", preview_skip: "Skip",
    agents: "Agents", queues: "Queues", waiting: "Waiting", longest_wait: "Longest wait",
    alerts: "Alerts", breach: "Not answered within three rings", set_state: "Set state", language: "中文",
    offered_today: "Offered today", sl_today: "SL today", sl_15m: "SL 15 min", sl_30m: "SL 30 min",
    sl_60m: "SL 60 min", abandon_rate: "Abandoned", asa: "ASA", waiting_callers: "Waiting callers",
    status_closed: "closed", status_no_agent: "no agent", turned_away: "Closed / no agent",
    queue: "Queue", wait: "Wait", in_state: "In state", current_call: "Current call", handled: "Handled",
    missed: "Missed", pause_time: "Pause", idle_time: "Idle", today_since: "Today since",
    more_waiting: "{n} more waiting",
    closing: "Closing", correct: "Correct", customer_name: "Name", send_correction: "Save correction", cancel: "Cancel",
    corrected: "Corrected", records_pending: "Calls awaiting their record", no_records: "Every call has its record",
    without_call: "Without a call", draft: "draft", saving: "Saving…", retrying: "Not stored yet, retrying",
    draft_not_kept: "The draft could not be kept in this browser", ended: "Ended", not_answered: "Not answered",
    by_caller: "caller", by_agent: "agent", answered_at_ring: "answered at ring {n}", base_prices: "Base prices (state them to the caller)",
    base_price: "Base price", complaint_class: "Complaint class", class_ordinary: "Ordinary", class_serious: "Serious",
    class_invalid: "Invalid", class_valid: "Valid", "class_other-unit": "Another unit's",
    promise_due_at: "We will reply by", promise_text: "Reply about", promise_needs_both: "a promised reply needs its time and what it is about",
    new_call_kept: "A new call: the record you were typing is kept as a draft in the list",
    read_back: "Read back…", read_back_title: "Read back to the caller", read_back_confirm: "Read back: done", close: "Close",
    keys_hint: "Alt+R ready · Alt+N not ready · Alt+S save · Alt+B read back · Alt+1…9 records · Alt+M my day",
    my_day: "My day", refresh: "Refresh", aht: "Average handle time", without_record: "Without a record", time: "Time",
    outcome: "Outcome", talk: "Talk", record: "Record", record_saved: "Saved", record_missing: "Missing · open",
    day_none: "No calls yet today", day_unavailable: "Today's calls cannot be read now",
    outcome_answered: "Answered", outcome_missed: "Missed (rang out)", outcome_declined: "Declined", outcome_busy: "Busy",
    outcome_unreachable: "Unreachable", outcome_cancelled: "Caller hung up", "outcome_answered-elsewhere": "Answered elsewhere",
    outcome_error: "Error", outcome_interrupted: "Interrupted", outcome_refused: "Refused by the PBX",
    // the complaints page, the board's overdue complaints, the pop's complaints
    suggestions_tab: "Suggestions", replies_tab: "Promised replies", pick_one_case: "Choose one in the list.",
    status_recorded: "Recorded", status_assessed: "Assessed", status_forwarded: "Forwarded", status_answered: "Answered",
    status_open: "Open", status_done: "Done", act_assess: "Assess", act_forward: "Forward", act_answer: "Answer to the customer",
    act_reschedule: "Reschedule", act_reply: "Reply given", feasible: "Feasible", valuable: "Valuable", forward_to: "To (department)",
    adopted: "Adopted", answer: "Answer", to: "To", text: "Suggestion", suggester: "Suggester",
    forwarded_to: "Forwarded to", answered_at: "Answered", done_at: "Done", done_by: "Done by", kind: "Kind",
    complaint_id: "Complaint", customer_id: "Customer", follow_up: "Promised reply", n_items: "{n} items",
    change_assess: "Assessed", change_forward: "Forwarded", change_answer: "Answered", change_reschedule: "Rescheduled",
    change_reply: "Replied", due: "Due",
    // the call-back worklist (docs/callbacks.md)
    callbacks_tab: "Call-backs", callback: "Call-back", due_now: "Due now", act_attempts: "Record a call", act_call: "Call from my phone", calling: "Calling…", call_placed: "Your phone rings first; answer it and {number} is called. The outcome is recorded on this item",
    agent_id: "Agent", number: "Number", owed_since: "Owed since", abandons: "Abandons", assigned_to: "Assigned to",
    attempts: "Attempts", next_attempt_at: "Next attempt", expires_at: "Expires", closed_as: "Outcome",
    call_id: "Call", previous: "Was assigned to", status_expired: "Expired",
    cbkind_abandoned: "Abandoned call", "cbkind_call-back": "Complaint call-back", cbkind_reply: "Promised reply",
    outcome_cb_reached: "Reached", "outcome_cb_no-answer": "No answer", outcome_cb_busy: "Busy",
    "outcome_cb_wrong-number": "Wrong number", outcome_cb_declined: "Customer declined", outcome_cb_failed: "Could not call",
    "outcome_cb_answered-again": "Answered on a later call", outcome_cb_done: "Done on its case",
    change_attempt: "Call", change_close: "Closed", change_expire: "Expired",
    status: "Status", matter: "Matter", class: "Class", title_complaints: "Complaints", worklist: "Worklist", intake: "Log a complaint", to_board: "Supervisor board",
    complaints_link: "Complaints worklist", overdue_complaints: "Overdue complaints", overdue_none: "No overdue complaints",
    overdue_more: "All {n} overdue complaints…", overdue_unavailable: "Complaints cannot be read now",
    callbacks_owed: "Callers owed a call", callbacks_open: "Call-backs worklist", callbacks_none: "No caller is owed a call",
    callbacks_oldest: "The longest owed for {span}", callbacks_unavailable: "The call-backs cannot be read now",
    reports: "Reports", report_period: "Period (2026-11 or 2026-Q4)", report_format: "Format", report_get: "Download",
    reports_monthly: "Monthly reports", reports_none: "No monthly report yet", reports_unavailable: "The reports cannot be read now",
    reports_refused: "Reports are for supervisors, QA and managers", report_making: "Making the report…",
    status_received: "Received", status_classified: "Classified", status_investigated: "Investigated",
    status_correcting: "Correcting", "status_called-back": "Called back", status_closed: "Closed",
    owner: "Owner", due_today: "Due today", overdue: "Overdue", open_only: "Open only", apply: "Show", any: "Any",
    deadline: "Deadline", pick_one: "Choose a complaint in the list.", loading: "Loading…", n_complaints: "{n} complaints",
    first_500: "the first 500", open_complaint: "Open complaint", received_at: "Received", met_at: "met",
    reported_by: "Reported by", from_call: "a call's record", complainant: "Complainant", closed_at: "Closed",
    act_assign: "Assign", act_classify: "Classify / reclassify", act_investigation: "Investigation", act_corrective: "Corrective action",
    act_check: "Check of the corrective action", act_call_back: "Call-back", act_close: "Close",
    do_assign: "Assign", do_classify: "Classify", do_record: "Record", do_close: "Close the complaint", do_log: "Log the complaint",
    findings: "Findings", investigated_by: "By", by: "By", on_site: "On site", action_text: "Action",
    action: "Action", due_at: "Due", effective: "Effective", not_effective: "Not effective", not_checked: "Not checked yet",
    reached: "Reached", satisfied: "Satisfied", not_satisfied: "Not satisfied", not_asked: "Not asked", words: "The customer's words",
    customer_words: "The customer's words", yes: "Yes", no: "No", history: "History", who: "Who", what: "What", details: "Details",
    change_receive: "Received", change_assign: "Assigned", change_classify: "Classified", change_investigate: "Investigated",
    change_correct: "Corrective action", change_check: "Checked", "change_call-back": "Called back (reached)",
    "change_call-back-missed": "Call-back (not reached)", change_close: "Closed",
    done_change: "Recorded: {change}", logged_as: "Logged as complaint #{id}, due {deadline}",
    intake_title: "Log a complaint not tied to a call",
    intake_note: "Any staff member: the service centre takes every complaint (SOP 004 §3.1).",
    refused_network: "The service cannot be reached", refused_400: "Not accepted", refused_403: "Not allowed",
    refused_404: "Not found", refused_409: "Refused", refused_503: "The database is unavailable", refused_other: "Error",
  },
};

function pickLanguage() {
  const saved = localStorage.getItem("lang");
  if (saved === "zh" || saved === "en") return saved;
  return (navigator.languages || [navigator.language || "en"]).some((l) => l.toLowerCase().startsWith("zh")) ? "zh" : "en";
}

let LANG = pickLanguage();
function t(key) { return (TEXTS[LANG] && TEXTS[LANG][key]) || key; }
function applyTexts(root = document) {
  document.documentElement.lang = LANG === "zh" ? "zh-CN" : "en";
  root.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
}
function toggleLanguage() {
  LANG = LANG === "zh" ? "en" : "zh";
  localStorage.setItem("lang", LANG);
  applyTexts();
  document.dispatchEvent(new Event("desktop-language"));  // for texts a page wrote itself
}
// Bound here, not in the page: the Content-Security-Policy allows no inline handlers.
document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("lang");
  if (button) button.addEventListener("click", toggleLanguage);
});

// One websocket with reconnection (back-off, resume from the last message number).
// The token is the socket's first message, never part of the URL (URLs are logged).
// A session that ended (close code 4001), or a token of another role (4003), is not
// reconnected: the page logs in again.
function connect(path, token, onMessage, onStatus, onEnded) {
  let since = 0, delay = 500, ws = null;
  const open = () => {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}` + (since ? `?since=${since}` : "");
    const socket = new WebSocket(url);
    ws = socket;
    ws.onopen = () => {
      socket.send(JSON.stringify({ v: 1, type: "auth", token }));
      delay = 500;
      onStatus(true);
    };
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (typeof msg.seq === "number" && msg.type !== "hello") since = Math.max(since, msg.seq);
      if (msg.type === "hello" && !since) since = msg.seq || 0;
      onMessage(msg);
    };
    ws.onclose = (e) => {
      onStatus(false);
      if (e.code === 1008) return; // replaced by a newer session
      if (e.code === 4001 || e.code === 4003) { if (onEnded) onEnded(); return; } // logged out, expired, reset
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 15000);
    };
  };
  open();
  return { send: (obj) => ws && ws.readyState === 1 && ws.send(JSON.stringify({ v: 1, ...obj })) };
}
