// Chinese and English texts for the desktop pages. Chinese by default when the
// browser asks for it; the choice is kept in localStorage.
const TEXTS = {
  zh: {
    title_agent: "客服坐席", title_supervisor: "班长监控台", login: "登录", logout: "退出",
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
    read_back_done: "已复述要点", save: "保存", saved: "已保存", not_saved: "未保存，请重试",
    transfer: "转接", to_queue: "转队列", to_agent: "转坐席", hung_up_by: "先挂机",
    agents: "坐席", queues: "队列", waiting: "排队", longest_wait: "最长等待",
    alerts: "告警", breach: "超过三声未接", set_state: "设置状态", language: "English",
    offered_today: "今日来电", sl_today: "今日三声接通率", sl_15m: "15分钟接通率", sl_30m: "30分钟接通率",
    sl_60m: "60分钟接通率", abandon_rate: "放弃率", asa: "平均应答时间", waiting_callers: "排队来电",
    queue: "队列", wait: "等待", in_state: "状态时长", current_call: "当前通话", handled: "今日接听",
    missed: "未接", pause_time: "小休时长", idle_time: "空闲时长", today_since: "今日统计自",
    more_waiting: "另有 {n} 位排队",
  },
  en: {
    title_agent: "Agent desktop", title_supervisor: "Supervisor board", login: "Log in", logout: "Log out",
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
    read_back_done: "Read back done", save: "Save", saved: "Saved", not_saved: "Not saved, retry",
    transfer: "Transfer", to_queue: "To queue", to_agent: "To agent", hung_up_by: "Hung up first",
    agents: "Agents", queues: "Queues", waiting: "Waiting", longest_wait: "Longest wait",
    alerts: "Alerts", breach: "Not answered within three rings", set_state: "Set state", language: "中文",
    offered_today: "Offered today", sl_today: "SL today", sl_15m: "SL 15 min", sl_30m: "SL 30 min",
    sl_60m: "SL 60 min", abandon_rate: "Abandoned", asa: "ASA", waiting_callers: "Waiting callers",
    queue: "Queue", wait: "Wait", in_state: "In state", current_call: "Current call", handled: "Handled",
    missed: "Missed", pause_time: "Pause", idle_time: "Idle", today_since: "Today since",
    more_waiting: "{n} more waiting",
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
