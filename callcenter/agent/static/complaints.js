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
  let token = null, current = null, lastList = null;

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
    $("history").replaceChildren(...c.history.map((e) => {
      const tr = document.createElement("tr");
      const details = Object.entries(e.details || {}).filter(([, v]) => v !== null && v !== "")
        .map(([k, v]) => `${t(k)}: ${typeof v === "boolean" ? t(v ? "yes" : "no") : k === "complaint_class" || k === "class" ? t(`class_${v}`) : k.endsWith("_at") ? when(v) : v}`).join("; ");
      tr.append(cell(when(e.at)), cell(e.actor), cell(t(`change_${e.action}`)),
        cell((e.from_status ? `${t(`status_${e.from_status}`)} → ` : "") + t(`status_${e.to_status}`)), cell(details));
      return tr;
    }));
    for (const tr of $("rows").children) tr.classList.toggle("selected", Number(tr.dataset.id) === c.id);
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
  for (const form of document.querySelectorAll("#actions form")) {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!current) return;
      const action = form.dataset.action, id = current.id;
      $("action-status").className = ""; $("action-status").textContent = t("saving");
      const res = await api("POST", `/api/complaints/${id}/${action}`, bodyOf(action, form.elements));
      if (!res.ok) { $("action-status").className = "error"; $("action-status").textContent = refusal(res); return; }
      form.reset(); form.closest("details").open = false;
      show(res.data);
      $("action-status").textContent = t("done_change").replace("{change}", t(ACTS[action]));
      loadList();
    });
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
  function view(name) {
    $("list-view").hidden = name !== "list"; $("intake-view").hidden = name !== "intake";
    $("tab-list").setAttribute("aria-pressed", String(name === "list"));
    $("tab-intake").setAttribute("aria-pressed", String(name === "intake"));
    if (name === "intake") $("intake").elements.matter.focus();
  }
  function showIntakeOnly() {  // staff who may log complaints but not work them
    $("tab-list").hidden = true; $("to-board").hidden = true; view("intake");
  }
  $("tab-list").addEventListener("click", () => view("list"));
  $("tab-intake").addEventListener("click", () => view("intake"));
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
    $("login-box").hidden = false; $("list-view").hidden = true; $("intake-view").hidden = true; $("tabs").hidden = true;
    $("login-error").textContent = t("session_ended");
  }
  document.addEventListener("desktop-language", () => {
    fillSelects(); renderList(); if (current) show(current);
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
    $("login-box").hidden = true; $("tabs").hidden = false; $("tab-list").hidden = false; $("to-board").hidden = false;
    if (body.role === "agent") { showIntakeOnly(); return; }
    view("list");
    openFromHash();
  });
  fillSelects();
})();
