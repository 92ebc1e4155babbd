// The supervisor page: log in, then one websocket. The board comes as
// board.figures, whole once and then only the rows that changed (applied in
// order, by `seq`); floor.batch keeps agents' states live between two of them;
// times in state and waits are counted here, from the moments they began.
// Breach alerts come in floor.alerts, one or several. No build step.
(function () {
  applyTexts();
  const $ = (id) => document.getElementById(id);
  const ALERTS_KEPT = 200;  // lines in the alert list
  let link = null;
  // The board as the server last described it: {seq, at, day_started, counted_since,
  // agents: Map(id -> row), queues: Map(name -> row)}, in the server's order.
  let board = null;
  let asking = false;  // a whole board was asked for (supervisor.figures)
  // The server's wall clock minus this browser's. Each message's `at` is a little
  // behind the server's clock when it arrives (a whole board up to a period), so the
  // largest of the last few readings is the best.
  const skews = [];
  const serverNow = () => Date.now() / 1000 + (skews.length ? Math.max(...skews) : 0);

  const pct = (x) => (x === null || x === undefined ? "–" : (x * 100).toFixed(0) + "%");
  const since = (at, start) => (start === null || start === undefined ? "–" : Math.max(0, at - start).toFixed(0) + " s");
  function clock(x) {
    const s = Math.floor(Math.max(0, x)), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + ":" + String(m).padStart(2, "0") : m) + ":" + String(s % 60).padStart(2, "0");
  }
  function row(cells) { const tr = document.createElement("tr"); for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.append(td); } return tr; }
  function put(td, value) { const text = String(value); if (td.textContent !== text) td.textContent = text; }

  // Agents: one table row each, kept; a change rewrites its cells, the clock its times.
  const agentRows = new Map();
  function agentRow(id) {
    let tr = agentRows.get(id);
    if (!tr) {
      tr = document.createElement("tr");
      for (let i = 0; i < 12; i++) tr.insertCell();
      const ready = document.createElement("button");
      ready.onclick = () => link.send({ type: "supervisor.set_state", agent_id: id, state: "ready", reason: "supervisor" });
      const pause = document.createElement("button");
      pause.onclick = () => link.send({ type: "supervisor.set_state", agent_id: id, state: "not-ready", reason: prompt(t("reason")) || "supervisor" });
      tr.cells[10].append(ready); tr.cells[11].append(pause);
      agentRows.set(id, tr); $("agents").append(tr);
    }
    return tr;
  }
  function showAgent(a) {
    const c = agentRow(a.agent_id).cells;
    put(c[0], a.name); put(c[1], a.number); put(c[2], t(a.state)); put(c[3], a.reason || "");
    put(c[5], a.current_caller || ""); put(c[6], a.handled); put(c[7], a.missed);
    put(c[10].firstChild, t("ready")); put(c[11].firstChild, t("not_ready"));
    agentTimes(a, c, serverNow());
  }
  function agentTimes(a, c, now) {
    const today = Math.max(0, now - Math.max(a.state_since, board.day_started));  // the current state's share
    put(c[4], clock(now - a.state_since));
    put(c[8], clock(a.pause_seconds + (a.state === "not-ready" ? today : 0)));
    put(c[9], clock(a.idle_seconds + (a.state === "ready" ? today : 0)));
  }
  function dropAgent(id) {
    board.agents.delete(id);
    const tr = agentRows.get(id);
    if (tr) { tr.remove(); agentRows.delete(id); }
  }

  // Queues and their waiting callers: a few rows, drawn again whenever anything shows.
  function showQueues() {
    const now = serverNow(), queues = [...board.queues.values()];
    // A queue closed or with nobody there says so by its name; its calls turned away today after.
    const status = (q) => (q.status === "closed" ? ` (${t("status_closed")})` : q.status === "no-agent" ? ` (${t("status_no_agent")})` : "");
    $("queues").replaceChildren(...queues.map((q) => {
      const tr = row([q.name + status(q), q.waiting_count, since(now, q.longest_waiting_since),
        q.today.offered, pct(q.today.service_level), pct(q.last_15m.service_level), pct(q.last_30m.service_level),
        pct(q.last_60m.service_level), pct(q.today.abandonment_rate),
        q.today.asa_seconds === null ? "–" : q.today.asa_seconds.toFixed(0) + " s",
        `${q.today.closed ?? 0} / ${q.today.no_agent ?? 0}`]);
      tr.dataset.status = q.status || "open";
      return tr;
    }));
    $("calls").replaceChildren(...queues.flatMap((q) => {
      const rows = q.waiting.map((c) => row([q.name, c.caller, since(now, c.waiting_since), c.ring, c.breached ? t("breach") : ""]));
      const more = q.waiting_count - q.waiting.length;  // only the longest-waiting come listed
      if (more > 0) rows.push(row([q.name, t("more_waiting").replace("{n}", more), "", "", ""]));
      return rows;
    }));
    $("figures-note").textContent = `${t("today_since")} ${new Date(board.counted_since * 1000).toLocaleString()}` +
      ` · ${new Date(board.at * 1000).toLocaleTimeString()}`;
  }

  function onFigures(m) {
    if (m.full) {
      board = { agents: new Map(), queues: new Map() };
      asking = false;
      agentRows.clear(); $("agents").replaceChildren();
    } else if (!board || m.seq !== board.seq + 1) {
      // A change against a board this page does not have: ask for the whole one.
      if (!asking) { asking = true; link.send({ type: "supervisor.figures" }); }
      return;
    }
    Object.assign(board, { seq: m.seq, at: m.at, day_started: m.day_started, counted_since: m.counted_since });
    skews.push(m.at - Date.now() / 1000);
    if (skews.length > 5) skews.shift();
    for (const id of m.removed_agents) dropAgent(id);
    for (const name of m.removed_queues) board.queues.delete(name);
    for (const a of m.agents) { board.agents.set(a.agent_id, a); showAgent(a); }
    for (const q of m.queues) board.queues.set(q.name, q);
    showQueues();
  }
  function onBatch(m) {
    if (!board) return;
    for (const u of m.agents) {  // only what changed after the figures were made
      const a = board.agents.get(u.agent_id);
      if (!a || u.at <= board.at || u.at < a.state_since) continue;
      const ended = Math.max(0, u.at - Math.max(a.state_since, board.day_started));  // today's share of the state that ended
      const b = { ...a, state: u.state, reason: u.reason, state_since: u.at,
        pause_seconds: a.pause_seconds + (a.state === "not-ready" ? ended : 0),
        idle_seconds: a.idle_seconds + (a.state === "ready" ? ended : 0) };
      board.agents.set(u.agent_id, b);
      showAgent(b);
    }
  }
  function onAlerts(m) {
    const list = $("alerts");
    for (const a of m.alerts) {  // in the order they happened: the newest ends on top
      const li = document.createElement("li"); li.className = "alert";
      li.textContent = `${new Date(a.at * 1000).toLocaleTimeString()} ${t("breach")}: ${a.data.queue} ${a.data.call_id}`;
      list.prepend(li);
    }
    while (list.children.length > ALERTS_KEPT) list.lastChild.remove();
  }
  function onMessage(m) {
    if (m.type === "board.figures") onFigures(m);
    if (m.type === "floor.batch") onBatch(m);
    if (m.type === "floor.alerts") onAlerts(m);
  }

  setInterval(() => {  // the times grow here, not on the wire
    if (!board) return;
    const now = serverNow();
    for (const [id, tr] of agentRows) agentTimes(board.agents.get(id), tr.cells, now);
    showQueues();
  }, 1000);
  document.addEventListener("desktop-language", () => {
    if (!board) return;
    for (const a of board.agents.values()) showAgent(a);
    showQueues();
  });

  // Overdue complaints, read from the complaints API (as the worklist it links to) every
  // 30 s: whether one is overdue depends on the time of the reading, not on floor events.
  const OVERDUE_EVERY = 30000, OVERDUE_LISTED = 5, OVERDUE_READ = 500;
  let token = null, overdue = null, overdueTimer = null, owed = null;
  function showOwed() {
    if (owed === null) { $("cb-count").textContent = "–"; $("cb-oldest").textContent = t("callbacks_unavailable"); return; }
    const n = owed.length;
    $("cb-count").textContent = n >= OVERDUE_READ ? `${n}+` : String(n);
    $("cb-count").classList.toggle("alert", owed.some((x) => x.overdue));
    if (!n) { $("cb-oldest").textContent = t("callbacks_none"); return; }
    const oldest = Math.min(...owed.map((x) => Date.parse(x.owed_since)));
    const minutes = Math.max(0, Math.round((Date.now() - oldest) / 60000));
    const span = minutes < 120 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
    $("cb-oldest").textContent = t("callbacks_oldest").replace("{span}", span);
  }
  document.addEventListener("desktop-language", () => { if (token) showOwed(); });
  async function readOverdue() {
    clearTimeout(overdueTimer);
    if (!token) return;
    try {
      const r = await fetch(`/api/complaints?overdue=true&open=true&limit=${OVERDUE_READ}`, { headers: { Authorization: `Bearer ${token}` } });
      overdue = r.ok ? await r.json() : null;
    } catch (e) { overdue = null; }
    showOverdue();
    // What the centre owes its callers (docs/callbacks.md): the open call-back items.
    try {
      const r = await fetch(`/api/callbacks?limit=${OVERDUE_READ}`, { headers: { Authorization: `Bearer ${token}` } });
      owed = r.ok ? await r.json() : null;
    } catch (e) { owed = null; }
    showOwed();
    overdueTimer = setTimeout(readOverdue, OVERDUE_EVERY);
  }
  function showOverdue() {
    if (overdue === null) { $("overdue-count").textContent = "–"; $("overdue-list").replaceChildren(); $("overdue-link").textContent = t("overdue_unavailable"); return; }
    const n = overdue.length;
    $("overdue-count").textContent = n >= OVERDUE_READ ? `${n}+` : String(n);
    $("overdue-count").classList.toggle("alert", n > 0);
    $("overdue-list").replaceChildren(...overdue.slice(0, OVERDUE_LISTED).map((c) => {
      const li = document.createElement("li"), a = document.createElement("a");
      a.href = `/complaints#overdue=true&open=true&id=${c.id}`;
      a.textContent = `#${c.id} ${t(`class_${c.complaint_class}`)} · ${t(`status_${c.status}`)} · ${c.owner || "–"}: ${c.matter.slice(0, 60)}`;
      li.append(a);
      return li;
    }));
    $("overdue-link").textContent = n ? t("overdue_more").replace("{n}", n >= OVERDUE_READ ? `${n}+` : n) : t("overdue_none");
  }
  document.addEventListener("desktop-language", () => { if (token) showOverdue(); });

  // Reports (docs/reports.md): the monthly ones the service wrote, and any period's on
  // demand; fetched with the token and saved from the browser's memory.
  async function download(url, fallback) {
    const r = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
    if (!r.ok) {
      let error = r.statusText;
      try { error = (await r.json()).error; } catch (e) { /* not JSON */ }
      throw new Error(r.status === 403 ? t("reports_refused") : error);
    }
    const name = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "");
    const a = document.createElement("a");
    a.href = URL.createObjectURL(await r.blob());
    a.download = name ? name[1] : fallback;
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }
  let reportFiles = null;  // null: not read; "refused" or "failed"; else the list
  async function readReports() {
    try {
      const r = await fetch("/api/reports/files", { headers: { Authorization: `Bearer ${token}` } });
      reportFiles = r.ok ? await r.json() : (r.status === 403 ? "refused" : "failed");
    } catch (e) { reportFiles = "failed"; }
    showReports();
  }
  function showReports() {
    const list = $("report-files");
    if (reportFiles === "refused" || reportFiles === "failed") {
      list.replaceChildren(Object.assign(document.createElement("li"), { textContent: t(reportFiles === "refused" ? "reports_refused" : "reports_unavailable") }));
      return;
    }
    if (!reportFiles || !reportFiles.length) { list.replaceChildren(Object.assign(document.createElement("li"), { textContent: t("reports_none") })); return; }
    list.replaceChildren(...reportFiles.map((f) => {
      const li = document.createElement("li"), a = document.createElement("a");
      a.href = "#"; a.textContent = `${f.name} (${Math.ceil(f.size / 1024)} KB)`;
      a.dataset.file = f.name;
      a.onclick = (e) => { e.preventDefault(); download(`/api/reports/files/${encodeURIComponent(f.name)}`, f.name).catch((err) => { $("report-status").textContent = err.message; }); };
      li.append(a);
      return li;
    }));
  }
  document.addEventListener("desktop-language", () => { if (token && reportFiles !== null) showReports(); });
  $("report-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const period = $("report-period").value.trim(), fmt = $("report-format").value;
    $("report-status").textContent = t("report_making");
    try {
      await download(`/api/reports?period=${encodeURIComponent(period)}&format=${fmt}`, `report-${period}.${fmt}`);
      $("report-status").textContent = "";
    } catch (err) { $("report-status").textContent = err.message; }
  });

  $("login").addEventListener("submit", async (e) => {
    e.preventDefault();
    const r = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ user_id: $("user_id").value, password: $("password").value }) });
    const body = await r.json();
    // Who may watch the floor is the server's rule (roles.py): the socket says so (4003).
    if (!r.ok || !["supervisor", "manager", "team_leader"].includes(body.role)) { $("login-error").textContent = body.error || t("floor_roles_only"); return; }
    $("login-box").hidden = true; $("board").hidden = false;
    token = body.token; readOverdue(); readReports();
    link = connect("/ws/supervisor", body.token, onMessage, (up) => { $("link").className = up ? "pill on" : "pill off"; },
      () => { token = null; $("login-box").hidden = false; $("login-error").textContent = t("session_ended"); });
  });
})();
