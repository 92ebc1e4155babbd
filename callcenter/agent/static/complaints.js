// The complaints page: supervisors' worklist (filters, one complaint with its
// history, the changes the API takes) and the intake form any staff member may
// use (SOP 004 §3.1). Everything goes through the REST API (docs/complaints.md)
// with the token from /api/login; what the API refuses is shown in words. The
// filters are kept in the address's fragment (#overdue=true), so the board can
// link to a filtered list. No build step.
(function () {
  applyTexts();
  const $ = (id) => document.getElementById(id);
  const STATUSES = ["received", "classified", "investigated", "correcting", "called-back", "closed"];
  const CLASSES = ["ordinary", "serious", "invalid", "valid", "other-unit"];
  const ACTS = { assign: "act_assign", classify: "act_classify", investigation: "act_investigation",
    "corrective-action": "act_corrective", check: "act_check", "call-back": "act_call_back", close: "act_close" };
  const OUTCOMES = ["reached", "no-answer", "busy", "wrong-number", "declined", "failed"];
  let token = null, current = null, lastList = null, role = null;

  // -- the API --------------------------------------------------------------------------
  async function api(method, path, body) {
    let r;
    try {
      r = await fetch(path, { method, headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined });
    } catch (e) { return { ok: false, status: 0, error: e.message }; }
    let data = null;
    try { data = await r.json(); } catch (e) { /* no JSON */ }
    if (r.status === 401) ended();
    return r.ok ? { ok: true, status: r.status, data } : { ok: false, status: r.status, error: (data && data.error) || r.statusText };
  }
  // A refusal in words: what kind (by its status) and why (the API's reason, in Chinese where it is known).
  const REASONS = [
    [/^a (\S+) complaint cannot take '([^']+)'$/, (m) => t("why_state").replace("{state}", t(`status_${m[1]}`)).replace("{change}", t(`change_${m[2]}`))],
    [/^a (\S+) complaint needs a corrective action before it closes$/, (m) => t("why_needs_action").replace("{class}", t(`class_${m[1]}`))],
    [/^the corrective action has not been checked$/, () => t("why_not_checked")],
    [/^there is no corrective action to check$/, () => t("why_no_action")],
    [/^supervisors only$/, () => t("why_supervisors")],
  ];
  function refusal(res) {
    const kind = { 0: "refused_network", 400: "refused_400", 403: "refused_403", 404: "refused_404", 409: "refused_409", 503: "refused_503" }[res.status] || "refused_other";
    let why = res.error || "";
    if (LANG === "zh") for (const [re, say] of REASONS) { const m = re.exec(why); if (m) { why = say(m); break; } }
    return `${t(kind)}: ${why}`;
  }

  // -- times ----------------------------------------------------------------------------
  const locale = () => (LANG === "zh" ? "zh-CN" : "en-GB");
  function when(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString(locale(), { dateStyle: "medium", timeStyle: "short" });
  }
  function withZone(value) {  // a datetime-local value as an ISO time with this browser's offset
    if (!value) return null;
    const d = new Date(value), off = -d.getTimezoneOffset(), sign = off >= 0 ? "+" : "-", abs = Math.abs(off);
    return `${value}:00${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
  }
  function cell(text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; }
  function option(value, text) { const o = document.createElement("option"); o.value = value; o.textContent = text; return o; }

  // -- the selects, in the page's language ----------------------------------------------
  function fillSelects() {
    const keep = (el, fill) => { const v = el.value; fill(el); if ([...el.options].some((o) => o.value === v)) el.value = v; };
    keep($("f-status"), (el) => el.replaceChildren(option("", t("any")), ...STATUSES.map((s) => option(s, t(`status_${s}`)))));
    keep($("f-class"), (el) => el.replaceChildren(option("", t("any")), ...CLASSES.map((c) => option(c, t(`class_${c}`)))));
    keep($("c-status"), (el) => el.replaceChildren(option("", t("any")), ...["recorded", "assessed", "forwarded", "answered"].map((x) => option(x, t(`status_${x}`)))));
    for (const el of document.querySelectorAll("select.outcomes")) keep(el, (s) => s.replaceChildren(...OUTCOMES.map((o) => option(o, t(`outcome_cb_${o}`)))));
    for (const el of document.querySelectorAll("select.classes")) keep(el, (s) => s.replaceChildren(...CLASSES.map((c) => option(c, t(`class_${c}`)))));
  }

  // -- the worklist ---------------------------------------------------------------------
  function filtersFromHash() {
    const q = new URLSearchParams(location.hash.slice(1)), f = $("filters").elements;
    f.status.value = q.get("status") || ""; f.class.value = q.get("class") || ""; f.owner.value = q.get("owner") || "";
    f.due.checked = q.get("due") === "today"; f.overdue.checked = q.get("overdue") === "true";
    f.open.checked = q.get("open") !== "false";
  }
  function query() {
    const f = $("filters").elements, q = new URLSearchParams();
    if (f.status.value) q.set("status", f.status.value);
    if (f.class.value) q.set("class", f.class.value);
    if (f.owner.value.trim()) q.set("owner", f.owner.value.trim());
    if (f.due.checked) q.set("due", "today");
    if (f.overdue.checked) q.set("overdue", "true");
    if (f.open.checked) q.set("open", "true");
    return q;
  }
  async function loadList() {
    const q = query(), shown = new URLSearchParams(q);
    if (!$("filters").elements.open.checked) shown.set("open", "false");
    history.replaceState(null, "", `#${shown}`);
    q.set("tz", Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC");
    q.set("limit", "500");
    $("list-status").textContent = t("loading");
    let res = await api("GET", `/api/complaints?${q}`);
    if (!res.ok && res.status === 400 && /^tz:/.test(res.error)) {  // a zone the service does not know
      q.set("tz", "UTC"); res = await api("GET", `/api/complaints?${q}`);
    }
    if (!res.ok) {
      $("list-status").textContent = refusal(res);
      if (res.status === 403) showIntakeOnly();
      return;
    }
    lastList = res.data;
    renderList();
  }
  function renderList() {
    if (!lastList) return;
    $("list-status").textContent = t("n_complaints").replace("{n}", lastList.length) + (lastList.length === 500 ? ` (${t("first_500")})` : "");
    $("rows").replaceChildren(...lastList.map((c) => {
      const tr = document.createElement("tr");
      tr.dataset.id = c.id;
      if (c.overdue) tr.className = "overdue";
      if (current && current.id === c.id) tr.classList.add("selected");
      const open = document.createElement("button");
      open.type = "button"; open.className = "open"; open.textContent = `#${c.id}`;
      open.setAttribute("aria-label", `${t("open_complaint")} ${c.id}`);
      open.addEventListener("click", () => openComplaint(c.id));
      const first = document.createElement("td"); first.append(open);
      tr.append(first, cell(when(c.deadline_at) + (c.overdue ? ` · ${t("overdue")}` : ""), c.overdue ? "late" : ""),
        cell(t(`class_${c.complaint_class}`)), cell(t(`status_${c.status}`)), cell(c.owner || "–"),
        cell(c.matter.length > 60 ? `${c.matter.slice(0, 60)}…` : c.matter, "matter"));
      return tr;
    }));
  }

  // -- one complaint --------------------------------------------------------------------
  async function openComplaint(id) {
    const res = await api("GET", `/api/complaints/${id}`);
    if (!res.ok) { $("list-status").textContent = refusal(res); return; }
    show(res.data); $("action-status").textContent = "";
    $("detail-title").focus();
  }
  function show(c) {
    current = c;
    $("no-detail").hidden = true; $("detail-body").hidden = false;
    $("detail-title").textContent = `${t("complaint")} #${c.id} · ${t(`status_${c.status}`)}`;
    $("detail-title").tabIndex = -1;
    const facts = [
      ["matter", c.matter], ["complainant", c.complainant || "–"], ["contact", c.contact || "–"],
      ["complaint_class", t(`class_${c.complaint_class}`)], ["received_at", when(c.received_at)],
      ["deadline", when(c.deadline_at) + (c.overdue ? ` · ${t("overdue")}` : "") + (c.met_at ? ` · ${t("met_at")} ${when(c.met_at)}` : "")],
      ["owner", c.owner || "–"], ["reported_by", c.reported_by || (c.form_id ? t("from_call") : "–")],
    ];
    if (c.occurred_at) facts.push(["complaint_occurred_at", when(c.occurred_at)]);
    if (c.investigation) facts.push(["act_investigation", `${c.investigation.findings || ""} (${c.investigation.by || "–"}${c.investigation.on_site ? `, ${t("on_site")}` : ""})`]);
    if (c.corrective_action) {
      const a = c.corrective_action;
      facts.push(["act_corrective", `${a.action} (${a.owner || "–"}, ${t("due_at")} ${when(a.due_at)})`]);
      facts.push(["act_check", a.checked_at ? `${when(a.checked_at)} · ${a.effective ? t("effective") : t("not_effective")}` : t("not_checked")]);
    }
    if (c.called_back_at) {
      facts.push(["act_call_back", `${when(c.called_back_at)} · ${c.satisfied === null ? t("not_asked") : c.satisfied ? t("satisfied") : t("not_satisfied")}`]);
      if (c.customer_words) facts.push(["customer_words", c.customer_words]);
    }
    if (c.closed_at) facts.push(["closed_at", when(c.closed_at)]);
    $("facts").replaceChildren(...facts.flatMap(([k, v]) => {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = t(k); dd.textContent = v;
      if (k === "deadline" && c.overdue) dd.className = "late";
      return [dt, dd];
    }));
    $("actions").hidden = c.status === "closed";
    $("history").replaceChildren(...historyRows(c.history));
    for (const tr of $("rows").children) tr.classList.toggle("selected", Number(tr.dataset.id) === c.id);
  }
  function value(k, v) {  // a value of a change or a fact, as the page shows it
    if (typeof v === "boolean") return t(v ? "yes" : "no");
    if (k === "complaint_class" || k === "class") return t(`class_${v}`);
    if (k === "closed_as" || (k === "outcome" && kind === "callbacks")) return t(`outcome_cb_${v}`);
    return k.endsWith("_at") || k === "owed_since" ? when(v) : String(v);
  }
  function historyRows(entries) {
    return entries.map((e) => {
      const tr = document.createElement("tr");
      const details = Object.entries(e.details || {}).filter(([, v]) => v !== null && v !== "")
        .map(([k, v]) => `${t(k)}: ${value(k, v)}`).join("; ");
      tr.append(cell(when(e.at)), cell(e.actor), cell(t(`change_${e.action}`)),
        cell((e.from_status ? `${t(`status_${e.from_status}`)} → ` : "") + t(`status_${e.to_status}`)), cell(details));
      return tr;
    });
  }
  function bodyOf(action, f) {
    const text = (name) => (f[name].value.trim() ? f[name].value.trim() : undefined);
    switch (action) {
      case "assign": return { owner: f.owner.value.trim() };
      case "classify": return { complaint_class: f.complaint_class.value, reason: text("reason") };
      case "investigation": return { findings: f.findings.value.trim(), on_site: f.on_site.checked, by: text("by") };
      case "corrective-action": return { owner: f.owner.value.trim(), action: f.action.value.trim(), due_at: withZone(f.due_at.value) };
      case "check": return { effective: f.effective.value === "true", notes: text("notes") };
      case "call-back": return { reached: f.reached.value === "true",
        satisfied: f.satisfied.value === "" ? undefined : f.satisfied.value === "true", words: text("words") };
      case "close": return { notes: text("notes") };
    }
    return {};
  }
  // Each change's form: sent for the one on screen; the answer shown, or the refusal in words.
  function bindChanges(selector, { path, body, status, shown, label }) {
    for (const form of document.querySelectorAll(`${selector} form`)) {
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const target = path();
        if (!target) return;
        const action = form.dataset.action, line = $(status);
        line.className = ""; line.textContent = t("saving");
        const res = await api("POST", `${target}/${action}`, body(action, form.elements));
        if (!res.ok) { line.className = "error"; line.textContent = refusal(res); return; }
        form.reset(); form.closest("details").open = false;
        shown(res.data);
        line.textContent = t("done_change").replace("{change}", t(label(action)));
      });
    }
  }
  bindChanges("#actions", { path: () => current && `/api/complaints/${current.id}`, body: bodyOf, status: "action-status",
    shown: (c) => { show(c); loadList(); }, label: (action) => ACTS[action] });

  // -- suggestions and promised replies ------------------------------------------------
  // One view for both, by `kind`: its list, one with its history, the changes it takes.
  const CASES = {
    suggestions: { path: "/api/suggestions", title: "suggestion",
      columns: ["#", "received_at", "status", "text", "forwarded_to"],
      row: (x) => [when(x.received_at), t(`status_${x.status}`), x.text, x.forwarded_to || "–"],
      facts: ["text", "suggester", "contact", "reported_by", "received_at", "feasible", "valuable", "forwarded_to", "adopted", "answer", "answered_at"] },
    "follow-ups": { path: "/api/follow-ups", title: "follow_up",
      columns: ["#", "due", "status", "owner", "notes"],
      row: (x) => [when(x.due_at) + (x.overdue ? ` · ${t("overdue")}` : ""), t(`status_${x.status}`), x.owner || "–", x.notes || "–"],
      facts: ["notes", "due_at", "owner", "customer_id", "done_at", "done_by"] },
    // The call-back worklist (docs/callbacks.md): an agent sees theirs and their queues'.
    callbacks: { path: "/api/callbacks", title: "callback",
      columns: ["#", "owed_since", "kind", "number", "assigned_to", "attempts"],
      row: (x) => [when(x.owed_since) + (x.overdue ? ` · ${t("overdue")}` : x.due ? ` · ${t("due_now")}` : ""),
        t(`cbkind_${x.kind}`), x.number || "–", x.assigned_to || "–", `${x.attempts}/${x.max_attempts}`],
      facts: ["number", "queue", "owed_since", "abandons", "assigned_to", "attempts", "next_attempt_at",
        "expires_at", "closed_at", "closed_as", "complaint_id"] },
  };
  let kind = "suggestions", cases = null, currentCase = null;
  async function loadCases() {
    const f = $("case-filters").elements, q = new URLSearchParams({ limit: "500" });
    if (kind === "suggestions" && f.status.value) q.set("status", f.status.value);
    if (kind === "follow-ups") {
      q.set("kind", "reply");  // a complaint's call-back is worked in the complaint
      if (f.open.checked) q.set("open", "true");
      if (f.overdue.checked) q.set("overdue", "true");
    }
    if (kind === "callbacks") {
      if (f.due_now.checked) q.set("due", "now");
      if (!f.cb_open.checked) q.set("status", "any");
    }
    $("case-status").textContent = t("loading");
    const res = await api("GET", `${CASES[kind].path}?${q}`);
    if (!res.ok) { $("case-status").textContent = refusal(res); return; }
    cases = res.data; renderCases();
  }
  function renderCases() {
    const spec = CASES[kind];
    $("case-head").replaceChildren(...spec.columns.map((c) => { const th = document.createElement("th"); th.textContent = c === "#" ? c : t(c); return th; }));
    if (!cases) return;
    $("case-status").textContent = t("n_items").replace("{n}", cases.length);
    $("case-rows").replaceChildren(...cases.map((x) => {
      const tr = document.createElement("tr"), td = document.createElement("td"), b = document.createElement("button");
      tr.dataset.id = x.id; if (x.overdue) tr.className = "overdue";
      if (currentCase && currentCase.id === x.id) tr.classList.add("selected");
      b.type = "button"; b.className = "open"; b.textContent = `#${x.id}`;
      b.addEventListener("click", () => openCase(x.id));
      td.append(b); tr.append(td);
      spec.row(x).forEach((v, i) => tr.append(cell(v.length > 60 ? `${v.slice(0, 60)}…` : v, i === 0 && x.overdue ? "late" : "")));
      return tr;
    }));
  }
  async function openCase(id) {
    const res = await api("GET", `${CASES[kind].path}/${id}`);
    if (!res.ok) { $("case-status").textContent = refusal(res); return; }
    showCase(res.data); $("case-action-status").textContent = ""; $("case-title").focus();
  }
  function showCase(x) {
    currentCase = x;
    const spec = CASES[kind];
    $("case-none").hidden = true; $("case-body").hidden = false;
    $("case-title").textContent = `${t(spec.title)} #${x.id} · ${t(`status_${x.status}`)}` + (x.overdue ? ` · ${t("overdue")}` : "");
    $("case-facts").replaceChildren(...spec.facts.filter((k) => x[k] !== null && x[k] !== undefined && x[k] !== "").flatMap((k) => {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = t(k); dd.textContent = value(k, x[k]);
      return [dt, dd];
    }));
    $("case-actions").hidden = x.status === "answered" || x.status === "done" || (kind === "callbacks" && x.status !== "open");
    for (const el of document.querySelectorAll("#case-actions [data-assign]")) el.hidden = el.dataset.for !== kind || role === "agent";
    // Only an agent has a phone the service can ring first (docs/callbacks.md).
    for (const el of document.querySelectorAll("#case-actions [data-call]")) el.hidden = el.dataset.for !== kind || role !== "agent" || !x.number;
    $("case-history").replaceChildren(...historyRows(x.history));
    for (const tr of $("case-rows").children) tr.classList.toggle("selected", Number(tr.dataset.id) === x.id);
  }
  function caseBody(action, f) {
    const text = (name) => (f[name].value.trim() ? f[name].value.trim() : undefined);
    switch (action) {
      case "assess": return { feasible: f.feasible.value === "true", valuable: f.valuable.value === "true", notes: text("notes") };
      case "forward": return { to: f.to.value.trim() };
      case "answer": return { adopted: f.adopted.value === "true", answer: f.answer.value.trim() };
      case "assign": return kind === "callbacks" ? { agent_id: f.agent_id.value.trim() || null } : { owner: f.owner.value.trim() };
      case "attempts": return { outcome: f.outcome.value, notes: text("notes") };
      case "reschedule": return { due_at: withZone(f.due_at.value), reason: f.reason.value.trim() };
      case "reply": return { notes: text("notes") };
    }
    return {};
  }
  $("cb-call").addEventListener("click", async () => {
    if (!currentCase) return;
    const line = $("case-action-status");
    line.className = ""; line.textContent = t("calling");
    const res = await api("POST", `/api/callbacks/${currentCase.id}/call`);
    if (!res.ok) { line.className = "error"; line.textContent = refusal(res); return; }
    line.textContent = t("call_placed").replace("{number}", res.data.number);
  });
  bindChanges("#case-actions", { path: () => currentCase && `${CASES[kind].path}/${currentCase.id}`, body: caseBody,
    status: "case-action-status", shown: (x) => { showCase(x); loadCases(); fillSelects(); }, label: (action) => `act_${action}` });
  $("case-filters").addEventListener("submit", (e) => { e.preventDefault(); loadCases(); });
  function casesView(which) {
    if (kind !== which) { kind = which; cases = null; currentCase = null; $("case-rows").replaceChildren(); $("case-none").hidden = false; $("case-body").hidden = true; }
    for (const el of document.querySelectorAll("#cases-view [data-for]")) el.hidden = el.dataset.for !== kind;
    renderCases(); loadCases();
  }

  // -- intake ---------------------------------------------------------------------------
  $("intake").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = e.target.elements, body = { matter: f.matter.value.trim(), complaint_class: f.complaint_class.value };
    for (const name of ["complainant", "contact"]) if (f[name].value.trim()) body[name] = f[name].value.trim();
    if (f.occurred_at.value) body.occurred_at = withZone(f.occurred_at.value);
    $("intake-status").className = ""; $("intake-status").textContent = t("saving");
    const res = await api("POST", "/api/complaints", body);
    if (!res.ok) { $("intake-status").className = "error"; $("intake-status").textContent = refusal(res); return; }
    e.target.reset(); fillSelects();
    $("intake-status").textContent = t("logged_as").replace("{id}", res.data.id).replace("{deadline}", when(res.data.deadline_at));
    if (!$("tab-list").hidden) loadList();
  });

  // -- the views ------------------------------------------------------------------------
  const TABS = { list: "tab-list", suggestions: "tab-suggestions", "follow-ups": "tab-replies", callbacks: "tab-callbacks", intake: "tab-intake" };
  const CASE_VIEWS = ["suggestions", "follow-ups", "callbacks"];
  function view(name) {
    $("list-view").hidden = name !== "list"; $("intake-view").hidden = name !== "intake";
    $("cases-view").hidden = !CASE_VIEWS.includes(name);
    for (const [n, id] of Object.entries(TABS)) $(id).setAttribute("aria-pressed", String(n === name));
    if (name === "intake") $("intake").elements.matter.focus();
    if (CASE_VIEWS.includes(name)) casesView(name);
  }
  function showIntakeOnly() {  // staff who may log complaints but not work them
    for (const id of ["tab-list", "tab-suggestions", "tab-replies", "to-board"]) $(id).hidden = true;
    view("intake");
  }
  for (const [n, id] of Object.entries(TABS)) $(id).addEventListener("click", () => view(n));
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); loadList(); });
  // The filters in the fragment, and a complaint to open (#overdue=true&id=12, from the board).
  async function openFromHash() {
    const id = Number(new URLSearchParams(location.hash.slice(1)).get("id"));
    filtersFromHash();
    await loadList();
    if (id > 0) openComplaint(id);
  }
  window.addEventListener("hashchange", () => { if (token && !$("tab-list").hidden) { view("list"); openFromHash(); } });
  function ended() {
    token = null;
    $("login-box").hidden = false; $("tabs").hidden = true;
    for (const id of ["list-view", "cases-view", "intake-view"]) $(id).hidden = true;
    $("login-error").textContent = t("session_ended");
  }
  document.addEventListener("desktop-language", () => {
    fillSelects(); renderList(); if (current) show(current);
    renderCases(); if (currentCase) showCase(currentCase);
  });

  $("login").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("login-error").textContent = "";
    const r = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user_id: $("user_id").value, password: $("password").value }) });
    const body = await r.json();
    if (!r.ok) { $("login-error").textContent = body.error; return; }
    token = body.token;
    $("who").textContent = body.user_id;
    $("login-box").hidden = true; $("tabs").hidden = false;
    for (const id of ["tab-list", "tab-suggestions", "tab-replies", "tab-callbacks", "to-board"]) $(id).hidden = false;
    role = body.role;
    $("tab-callbacks").hidden = role === "qa";  // QA does not call customers back
    if (role === "agent") { showIntakeOnly(); $("tab-callbacks").hidden = false; return; }
    view("list");
    openFromHash();
  });
  fillSelects();
})();
