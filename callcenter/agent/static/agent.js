// The agent page: log in, then one websocket; the pop, the ring count, state
// commands and the record of each call. No build step.
//
// One record per call, kept until it is saved (docs/desktop.md, "The call's
// record"): every pop opens a record beside those not yet saved, the current
// call first; a record keeps its call and customer after hang-up; what the agent
// types is kept in localStorage (per agent and call) at once, so a reload or a
// reconnect loses nothing; after one the list is rebuilt from the drafts and
// `hello.records_pending`. A record leaves the list when its `form.saved` comes;
// a save the server could not store (`error` `unavailable`) is sent again, with
// the same form id, so it is stored once.
//
// "My day" (`agent.day`): today's offers and figures from the records, asked for
// after hello, a second after a call or an offer ends (the records are written
// from the journal a moment after the events) and when a record is saved.
(function () {
  applyTexts();
  const $ = (id) => document.getElementById(id);
  const FIELDS = ["caller_name", "address", "called_at", "contact", "service_requested", "appointment_at",
    "category", "special_requests", "complaint_class", "complaint_occurred_at", "complaint_matter",
    "promise_due_at", "promise_text", "satisfaction_asked", "satisfaction_score", "notes", "read_back_done"];
  const TEXT_FIELDS = ["caller_name", "address", "service_requested", "contact", "special_requests",
    "complaint_matter", "promise_text", "notes"];
  const TIME_FIELDS = ["called_at", "appointment_at", "complaint_occurred_at", "promise_due_at"];
  // The SOP's order for reading the record back (004 §1.4, then the rest).
  const READ_BACK = ["caller_name", "address", "called_at", "service_requested", "appointment_at", "contact",
    "special_requests", "category", "complaint_class", "complaint_matter", "complaint_occurred_at",
    "promise_due_at", "promise_text"];
  const CLASSES = ["ordinary", "serious", "invalid", "valid", "other-unit"];
  const NO_CALL = "-";  // the key of a record made without a call
  let link = null, lastRef = 0, agentId = null, sop = { closing: "", repair_prices: [], complaint_classes: CLASSES };
  const records = new Map();  // key (call id) -> record
  let selected = null;        // the key of the record on screen
  let savedLive = null;       // the current call once its record is saved: its pop stays until it ends
  const refs = new Map();     // ref -> {kind: "form"|"customer"|"day", key}
  const nextRef = () => `r${Date.now().toString(36)}${++lastRef}`;
  const form = $("call-form");

  // -- times ------------------------------------------------------------------------------
  function localIso(value) {
    if (!value) return null;
    const d = new Date(value);
    const off = -d.getTimezoneOffset(), sign = off >= 0 ? "+" : "-", abs = Math.abs(off);
    return `${value}:00${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
  }
  function toLocal(d) { d = new Date(d); d.setMinutes(d.getMinutes() - d.getTimezoneOffset()); return d.toISOString().slice(0, 16); }
  function fromWire(value) {  // seconds since the epoch, or an ISO text, as a datetime-local value
    if (value === null || value === undefined || value === "") return toLocal(Date.now());
    const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    return isNaN(d) ? toLocal(Date.now()) : toLocal(d);
  }
  // The line beside Save: a text's key and what follows it, written again in the other language.
  let shownStatus = [null, ""];
  function status(key, detail = "") {
    shownStatus = [key, detail];
    $("form-status").textContent = key ? (detail ? `${t(key)}: ${detail}` : t(key)) : "";
  }
  function list(el, items, fmt) { el.replaceChildren(...(items || []).map((i) => { const li = document.createElement("li"); li.textContent = fmt(i); return li; })); }

  // -- drafts -----------------------------------------------------------------------------
  const draftKey = (key) => `callcenter.record.${agentId}.${key}`;
  function persist(rec) {
    try { localStorage.setItem(draftKey(rec.key), JSON.stringify(rec)); }
    catch (e) { status("draft_not_kept", e.message); }
  }
  function forget(rec) { localStorage.removeItem(draftKey(rec.key)); }
  // The calls whose record was saved here lately, so a reload during such a call shows its pop only.
  const savedKey = () => `callcenter.saved.${agentId}`;
  function savedCalls() { try { return JSON.parse(localStorage.getItem(savedKey())) || []; } catch (e) { return []; } }
  function rememberSaved(callId) {
    try { localStorage.setItem(savedKey(), JSON.stringify([...savedCalls().filter((c) => c !== callId), callId].slice(-50))); }
    catch (e) { /* only the pop after a reload depends on it */ }
  }
  function loadDrafts() {
    const prefix = `callcenter.record.${agentId}.`, out = [];
    for (let i = 0; i < localStorage.length; i++) {
      const k = localStorage.key(i);
      if (!k || !k.startsWith(prefix)) continue;
      try { const rec = JSON.parse(localStorage.getItem(k)); if (rec && rec.key && rec.fields) out.push(rec); } catch (e) { /* not ours */ }
    }
    return out;
  }

  // -- records ----------------------------------------------------------------------------
  function newFormId() { return `form-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`; }
  function prefill(pop, calledAt) {
    const c = pop.customer;
    return { caller_name: c ? c.name : (pop.caller_name || ""), address: c && c.address ? c.address : "",
      contact: pop.caller || "", called_at: calledAt, category: "inquiry", complaint_class: "ordinary" };
  }
  function makeRecord(pop, status, calledAt) {
    return { key: pop.call_id || NO_CALL, call_id: pop.call_id || null, queue: pop.queue || "", caller: pop.caller || "",
      caller_name: pop.caller_name || null, greeting: pop.greeting || "", customer: pop.customer || null,
      offered_at: pop.offered_at || pop.answered_at || Date.now() / 1000, status, ring: pop.ring || 1, rings: null, hung_up_by: null,
      form_id: newFormId(), fields: prefill(pop, calledAt), touched: false, submit: null, error: "" };
  }
  // The current call first (ringing or on call), then the others as they came.
  function ordered() {
    const live = (r) => r.status === "ringing" || r.status === "on-call";
    return [...records.values()].sort((a, b) => (live(b) - live(a)) || (a.offered_at - b.offered_at));
  }
  function put(rec) { if (rec === savedLive) return; records.set(rec.key, rec); persist(rec); }
  const find = (callId) => records.get(callId) || (savedLive && savedLive.call_id === callId ? savedLive : null);
  function drop(rec) {
    records.delete(rec.key); forget(rec);
    if (selected === rec.key) select(ordered()[0] ? ordered()[0].key : null);
  }
  function endLiveExcept(key) {  // an agent has one call: a new one means the others are over
    for (const r of [...records.values()]) {
      if (r.key === key) continue;
      if (r.status === "ringing" && !r.touched) drop(r);
      else if (r.status === "ringing" || r.status === "on-call") { r.status = "ended"; persist(r); }
    }
  }

  // -- the screen -------------------------------------------------------------------------
  function statusText(r) {
    switch (r.status) {
      case "ringing": return `${t("ring")} ${r.ring}`;
      case "on-call": return t("on-call");
      case "missed": return t("not_answered");
      default: return r.hung_up_by ? `${t("ended")} · ${t("hung_up_by")}: ${t(`by_${r.hung_up_by}`)}` : t("ended");
    }
  }
  function renderList() {
    const items = ordered().map((r, i) => {
      const li = document.createElement("li"), b = document.createElement("button");
      b.type = "button"; b.dataset.call = r.key;
      b.className = `record ${r.status}` + (r.key === selected ? " selected" : "");
      const who = r.customer ? r.customer.name : (r.caller_name || t("unknown_caller"));
      const state = r.submit ? t("saving") : r.error ? t("not_saved") : r.touched ? t("draft") : "";
      const what = r.call_id ? [r.caller, who, statusText(r)] : [t("without_call")];
      if (state) what.push(state);
      b.textContent = `${i < 9 ? `${i + 1}. ` : ""}${what.join(" · ")}`;
      b.addEventListener("click", () => select(r.key));
      li.append(b);
      return li;
    });
    $("records").replaceChildren(...items);
    $("no-records").hidden = items.length > 0;
  }
  // The pop on screen: the selected record's call, else the call whose record is saved.
  function popRecord() {
    const r = selected !== null ? records.get(selected) : null;
    return r && r.call_id ? r : savedLive;
  }
  function renderPop() {
    const r = popRecord();
    $("no-call").hidden = !!(r && r.call_id); $("call").hidden = !(r && r.call_id);
    for (const id of ["closing-text", "read-back-closing"]) { $(id).textContent = sop.closing || ""; $(id).parentElement.hidden = !sop.closing; }
    if (!r || !r.call_id) return;
    $("ring-count").textContent = r.ring;
    $("ring-label").hidden = r.status !== "ringing";
    $("call-phase").textContent = r.status === "ringing" ? "" : statusText(r);
    $("ringbox").className = `ringbox ${r.status}`;
    $("greeting-text").textContent = r.greeting;
    $("caller-number").textContent = r.caller; $("caller-name").textContent = r.caller_name || "";
    const c = r.customer;
    $("customer-name").textContent = c ? c.name : t("unknown_caller");
    $("customer-vip").hidden = !(c && c.vip);
    $("correct").hidden = !c;
    $("customer-address").textContent = c && c.address ? c.address : "";
    $("customer-notes").textContent = c && c.notes ? c.notes : "";
    list($("recent-calls"), c ? c.recent_calls : [], (x) => `${when(x.arrived_at)} ${x.outcome || ""} ${x.agent_id || ""}`);
    list($("complaints"), c ? c.open_complaints : [], (x) => `${t(`class_${x.class}`)} · ${x.status ? t(`status_${x.status}`) : ""}` +
      `${x.overdue ? ` · ${t("overdue")}` : ""}: ${x.matter} (→ ${when(x.deadline_at)})`);
    if (c) (c.open_complaints || []).forEach((x, i) => { $("complaints").children[i].classList.toggle("overdue", !!x.overdue); });
    list($("follow-ups"), c ? c.follow_ups : [], (x) => `${x.kind} ${when(x.due_at)}`);
    for (const id of ["recent-calls", "complaints", "follow-ups"]) {  // a heading only over something
      $(id).hidden = !$(id).children.length; $(id).previousElementSibling.hidden = $(id).hidden;
    }
    $("call-status").textContent = r.status === "on-call" && r.rings ? `${t("on-call")} · ${t("answered_at_ring").replace("{n}", r.rings)}` : "";
  }
  function renderFormFor() {
    const r = selected !== null ? records.get(selected) : null;
    $("form-for").textContent = r && r.call_id ? `· ${r.caller} · ${r.customer ? r.customer.name : (r.caller_name || t("unknown_caller"))}` : "";
  }
  function showSopFields() {
    const category = form.category.value;
    $("repair-prices").hidden = category !== "repair" || !(sop.repair_prices || []).length;
    $("complaint-fields").hidden = category !== "complaint";
  }
  function fillForm(r) {
    const f = r ? r.fields : prefill({}, toLocal(Date.now()));
    for (const name of FIELDS) {
      const el = form.elements[name];
      if (!el) continue;
      if (el.type === "checkbox") el.checked = !!f[name];
      else el.value = f[name] === undefined || f[name] === null ? (name === "category" ? "inquiry" : name === "complaint_class" ? "ordinary" : "") : f[name];
    }
    showSopFields();
  }
  function readForm() {
    const f = {};
    for (const name of FIELDS) {
      const el = form.elements[name];
      if (el) f[name] = el.type === "checkbox" ? el.checked : el.value;
    }
    return f;
  }
  function select(key) {
    selected = key;
    const r = key !== null ? records.get(key) : null;
    fillForm(r);
    if (r && r.error) status("not_saved", r.error); else status(r && r.submit ? "saving" : null);
    $("correction").hidden = true; $("correction-status").textContent = "";
    render();
  }
  function render() { renderList(); renderPop(); renderFormFor(); }
  function setSop(value) {
    if (!value) return;
    sop = { closing: value.closing || "", repair_prices: value.repair_prices || [],
      complaint_classes: value.complaint_classes && value.complaint_classes.length ? value.complaint_classes : CLASSES };
    fillClasses();
    list($("repair-price-list"), sop.repair_prices, (p) => `${p.item}: ${p.price}`);
  }
  function fillClasses() {
    const el = $("complaint-class"), value = el.value || "ordinary";
    el.replaceChildren(...sop.complaint_classes.map((c) => { const o = document.createElement("option"); o.value = c; o.textContent = t(`class_${c}`); return o; }));
    el.value = sop.complaint_classes.includes(value) ? value : sop.complaint_classes[0];
  }

  // The agent types: the record on screen takes it, and its draft is kept at once.
  function edited() {
    let r = selected !== null ? records.get(selected) : null;
    if (!r) {  // nothing selected: a record without a call
      r = records.get(NO_CALL) || makeRecord({}, "ended", toLocal(Date.now()));
      selected = r.key;
    }
    r.fields = readForm(); r.touched = true;
    put(r); showSopFields(); renderList();
  }
  form.addEventListener("input", edited);
  form.addEventListener("change", edited);

  // -- saving -----------------------------------------------------------------------------
  function formOf(r) {
    const f = r.fields, out = { id: r.form_id, category: f.category || "inquiry" };
    for (const name of TEXT_FIELDS) if (f[name]) out[name] = f[name];
    for (const name of TIME_FIELDS) if (f[name]) out[name] = localIso(f[name]);
    if (out.category === "complaint") out.complaint_class = f.complaint_class || "ordinary";
    else { delete out.complaint_matter; delete out.complaint_occurred_at; }
    out.satisfaction_asked = !!f.satisfaction_asked; out.read_back_done = !!f.read_back_done;
    if (f.satisfaction_score) out.satisfaction_score = Number(f.satisfaction_score);
    if (r.call_id) out.call_id = r.call_id;
    if (r.customer && r.customer.id) out.customer_id = r.customer.id;  // the server takes the call's own
    return out;
  }
  function send(r) {
    if (!r.submit) return;
    refs.set(r.submit.ref, { kind: "form", key: r.key });
    if (link) link.send({ type: "form.submit", form: formOf(r), ref: r.submit.ref });
  }
  function save(r) {
    const f = r.fields;
    if (!f.called_at) { status("not_saved", t("called_at")); return; }
    if (!!f.promise_due_at !== !!f.promise_text) { status("not_saved", t("promise_needs_both")); return; }
    r.error = ""; r.submit = { ref: nextRef(), tries: 1 };
    put(r); send(r);
    status("saving"); renderList();
  }
  function retry(r) {
    const delay = Math.min(1000 * 2 ** Math.min(r.submit.tries - 1, 4), 15000);
    setTimeout(() => {
      if (records.get(r.key) !== r || !r.submit) return;
      refs.delete(r.submit.ref);
      r.submit = { ref: nextRef(), tries: r.submit.tries + 1 };
      put(r); send(r);
    }, delay);
  }
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    edited();
    save(records.get(selected));
  });

  // -- the read-back view -----------------------------------------------------------------
  function when(text) {  // a time from the records ("2026-12-07 10:00:00+00:00") as the agent reads it
    const d = text ? new Date(String(text).replace(" ", "T")) : null;
    return d && !isNaN(d) ? d.toLocaleString(LANG === "zh" ? "zh-CN" : "en-GB", { dateStyle: "medium", timeStyle: "short" }) : (text || "");
  }
  function readBackValue(name, v) {
    if (name === "category") return t(v);
    if (name === "complaint_class") return t(`class_${v}`);
    if (TIME_FIELDS.includes(name) && v) return when(v);
    return v;
  }
  function openReadBack() {
    const f = readForm(), items = [];
    for (const name of READ_BACK) {
      if (name.startsWith("complaint_") && f.category !== "complaint") continue;
      const v = f[name];
      if (!v && !["caller_name", "address", "called_at", "service_requested", "appointment_at", "contact", "special_requests"].includes(name)) continue;
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = t(name); dd.textContent = v ? readBackValue(name, v) : "—";
      if (!v) dd.className = "missing";
      items.push(dt, dd);
    }
    if (f.category === "repair") for (const p of sop.repair_prices || []) {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = `${t("base_price")}: ${p.item}`; dd.textContent = String(p.price); items.push(dt, dd);
    }
    $("read-back-list").replaceChildren(...items);
    $("read-back").showModal();
  }
  $("read-back-open").addEventListener("click", openReadBack);
  $("read-back-close").addEventListener("click", () => $("read-back").close());
  $("read-back-done").addEventListener("click", () => {
    form.read_back_done.checked = true; edited(); $("read-back").close(); form.read_back_done.focus();
  });

  // -- corrections of the customer --------------------------------------------------------
  $("correct").addEventListener("click", () => {
    const r = popRecord(), c = r && r.customer, box = $("correction");
    if (!c) return;
    box.elements.name.value = c.name || ""; box.elements.address.value = c.address || ""; box.elements.notes.value = c.notes || "";
    box.hidden = false; $("correction-status").textContent = ""; box.elements.name.focus();
  });
  $("correction-cancel").addEventListener("click", () => { $("correction").hidden = true; });
  $("correction").addEventListener("submit", (e) => {
    e.preventDefault();
    const r = popRecord(), c = r && r.customer, box = e.target;
    if (!c) return;
    const msg = { type: "customer.update", customer_id: c.id, ref: nextRef() };
    for (const name of ["name", "address", "notes"]) if (box.elements[name].value !== (c[name] || "")) msg[name] = box.elements[name].value;
    refs.set(msg.ref, { kind: "customer", key: r.key });
    $("correction-status").textContent = t("saving");
    link.send(msg);
  });
  function customerUpdated(m) {
    const c = m.customer;
    if (!c) return;
    for (const r of [...records.values(), savedLive]) {
      if (r && r.customer && r.customer.id === c.id) { r.customer = { ...r.customer, ...c }; put(r); }
    }
    $("correction").hidden = true; $("correction-status").textContent = t("corrected");
    render();
  }

  // -- my day -----------------------------------------------------------------------------
  let lastDay = null, dayTimer = null;
  function askDay() {
    clearTimeout(dayTimer); dayTimer = null;
    if (!link) return;
    const ref = nextRef();
    refs.set(ref, { kind: "day" });
    link.send({ type: "agent.day", ref });
  }
  function askDayIn(ms) { clearTimeout(dayTimer); dayTimer = setTimeout(askDay, ms); }
  function clock(seconds) {  // 95 -> "1:35"
    const s = Math.round(seconds);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }
  function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }
  // A call lacking its record, opened in the record list (made there if this desk has no record of it).
  function openFromDay(o) {
    let r = records.get(o.call_id);
    if (!r) {
      r = makeRecord({ call_id: o.call_id, queue: o.queue, caller: o.caller, caller_name: o.customer_name,
        offered_at: o.offered_at }, "ended", fromWire(o.offered_at));
      put(r);
    }
    select(r.key);
    form.caller_name.focus();
  }
  function renderDay() {
    const d = lastDay;
    if (!d) return;
    $("day-handled").textContent = d.handled; $("day-missed").textContent = d.missed;
    $("day-aht").textContent = d.aht_seconds === null ? "–" : clock(d.aht_seconds);
    $("day-without").textContent = d.without_record;
    $("day-rows").replaceChildren(...d.offers.map((o) => {
      const tr = document.createElement("tr");
      tr.dataset.call = o.call_id; tr.className = o.outcome || "ringing";
      const time = new Date(o.offered_at * 1000).toLocaleTimeString(LANG === "zh" ? "zh-CN" : "en-GB", { hour: "2-digit", minute: "2-digit" });
      const record = document.createElement("td");
      if (o.outcome === "answered" && o.recorded) record.textContent = t("record_saved");
      else if (o.outcome === "answered") {
        const b = document.createElement("button");
        b.type = "button"; b.className = "open-record"; b.textContent = t("record_missing");
        b.addEventListener("click", () => openFromDay(o));
        record.append(b);
      }
      tr.append(cell(time), cell(o.customer_name ? `${o.caller} · ${o.customer_name}` : o.caller),
        cell(o.outcome ? t(`outcome_${o.outcome}`) : t("ringing")),
        cell(o.talk_seconds === null ? "" : clock(o.talk_seconds)), record);
      return tr;
    }));
    $("day-status").textContent = d.offers.length ? "" : t("day_none");
  }

  // -- messages ---------------------------------------------------------------------------
  function hello(m) {
    agentId = m.agent.id;
    $("who").textContent = `${m.agent.name} (${m.agent.number})`;
    showState(m.state, m.reason);
    setSop(m.sop);
    for (const d of loadDrafts()) if (!records.has(d.key)) records.set(d.key, d);
    const open = new Map((m.calls || []).map((p) => [p.call_id, p]));
    const pending = Array.isArray(m.records_pending) ? new Map(m.records_pending.map((p) => [p.call_id, p])) : null;
    if (savedLive && !open.has(savedLive.call_id)) savedLive = null;
    for (const p of open.values()) {
      const answered = p.answered !== undefined ? !!p.answered
        : m.state === "on-call" && p === m.calls[m.calls.length - 1];  // an older server: as its state says
      let r = records.get(p.call_id);
      if (!r && savedLive && savedLive.call_id === p.call_id) r = savedLive;
      // A call whose record this browser saved: its pop only. (Not inferred from its absence
      // from records_pending: that is empty while the database does not answer, and lags
      // the answer by the records writer's delay.)
      if (!r && savedCalls().includes(p.call_id)) r = savedLive = makeRecord(p, "on-call", "");
      if (!r) r = makeRecord(p, "ringing", fromWire(p.offered_at));
      r.greeting = p.greeting || r.greeting; r.customer = p.customer || r.customer; r.ring = p.ring || r.ring;
      r.status = answered ? "on-call" : "ringing";
      if (answered && p.rings) r.rings = p.rings;
      put(r);
    }
    if (pending) for (const p of pending.values()) {
      let r = records.get(p.call_id);
      if (!r) r = makeRecord(p, p.ended_at ? "ended" : "on-call", fromWire(p.answered_at));
      if (p.customer) r.customer = p.customer;
      if (!open.has(p.call_id)) r.status = p.ended_at || r.status !== "on-call" ? "ended" : "on-call";
      put(r);
    }
    // Calls that were live and are not any more: over while the page was away.
    for (const r of [...records.values()]) {
      if (!r.call_id || open.has(r.call_id)) continue;
      const known = pending && pending.has(r.call_id);
      if (r.status === "ringing" && !r.touched && !known) drop(r);
      else if (r.status === "ringing" || r.status === "on-call") { r.status = known || r.status === "on-call" ? "ended" : "missed"; persist(r); }
    }
    for (const r of records.values()) if (r.submit) send(r);  // not answered before the socket closed
    if (selected === null || !records.has(selected)) { const first = ordered()[0]; select(first ? first.key : null); }
    else render();
    askDay();
    preview = null; renderPreview();
    if (m.state === "ready") askPreview({ type: "agent.preview" });
  }
  let shownState = ["offline", null];
  function showState(state, reason) {
    shownState = [state, reason];
    $("state").textContent = t(state); $("state").dataset.state = state;
    $("reason").textContent = reason ? `(${reason})` : "";
    if (["wrap-up", "ready", "not-ready", "offline"].includes(state)) {
      savedLive = null;
      for (const r of records.values()) if (r.status === "on-call") { r.status = "ended"; persist(r); }
      render();
    }
    if (state !== "ready") preview = null;  // the server offers the next when the agent is ready again
    renderPreview();
  }
  // The call-back offered while the agent is free (callback.preview): shown while ready with no
  // call offered or going on; Call places it (agent.dial naming the item), Skip asks for the next.
  let preview = null;
  function busy() { return [...records.values()].some((r) => r.status === "ringing" || r.status === "on-call"); }
  function renderPreview() {
    const shown = !!preview && shownState[0] === "ready" && !busy();
    $("preview-box").hidden = !shown;
    if (!shown) return;
    $("preview-kind").textContent = t(`cbkind_${preview.kind}`);
    $("preview-number").textContent = preview.number || "";
    $("preview-owed").textContent = new Date(preview.owed_since * 1000).toLocaleString(LANG === "zh" ? "zh-CN" : "en-GB");
    $("preview-attempts").textContent = `${preview.attempts}/${preview.max_attempts}`;
  }
  function askPreview(message) {
    const ref = nextRef(); refs.set(ref, { kind: "preview" });
    link.send({ ...message, ref });
  }
  // A call the agent placed (agent.dial): its progress in words, the customer's name once known.
  let dialled = null;
  function showProgress(m) {
    if (m.stage === "agent-ringing") dialled = { call_id: m.call_id, customer: m.customer };
    const key = `dial_${(m.stage === "ended" ? m.outcome : m.stage).replace(/-/g, "_")}`;
    const said = t(key) !== key ? t(key) : m.text;
    const customer = dialled && dialled.call_id === m.call_id && dialled.customer ? ` ${dialled.customer.name}` : "";
    $("dial-status").textContent = `${m.number}${customer}: ${said}`;
  }
  function onMessage(m) {
    const r = m.call_id !== undefined ? find(m.call_id) : null;
    switch (m.type) {
      case "hello": hello(m); break;
      case "call.offered": {
        endLiveExcept(m.call_id); savedLive = null; preview = null; $("preview-box").hidden = true;
        const rec = records.get(m.call_id) || makeRecord(m, "ringing", fromWire(m.offered_at));
        rec.status = "ringing"; rec.ring = m.ring || 1; rec.greeting = m.greeting; rec.customer = m.customer || rec.customer;
        // The new call on screen at ring 1 (SOP 004 §1.1); the others wait in the list. A field
        // being typed in loses the focus first, so that no keystroke meant for another
        // record lands in this one.
        const typing = form.contains(document.activeElement) && selected !== rec.key;
        if (typing) document.activeElement.blur();
        put(rec); select(rec.key);
        if (typing) status("new_call_kept");
        break;
      }
      case "call.ring":
        if (r && r.status === "ringing") { r.ring = m.ring; render(); }
        break;
      case "call.answered":
        if (r) { r.status = "on-call"; r.rings = m.rings; put(r); render(); }
        break;
      case "call.offer_ended":
        if (r === savedLive) savedLive = null;
        else if (r && r.status === "ringing") { if (r.touched) { r.status = "missed"; put(r); } else drop(r); }
        render(); askDayIn(1000);
        break;
      case "call.ended":
        if (r === savedLive) savedLive = null;
        else if (r) { r.status = "ended"; r.hung_up_by = m.hung_up_by; put(r); }
        render(); askDayIn(1000);
        break;
      case "agent.day": refs.delete(m.ref); lastDay = m; renderDay(); break;
      case "agent.state": showState(m.state, m.reason); break;
      case "call.progress": showProgress(m); break;
      case "callback.preview": if (m.ref) refs.delete(m.ref); preview = m.item; renderPreview(); break;
      case "customer.updated": refs.delete(m.ref); customerUpdated(m); break;
      case "form.saved": {
        const ref = refs.get(m.ref); refs.delete(m.ref);
        const rec = ref && records.get(ref.key);
        if (rec && rec.submit && rec.submit.ref === m.ref) {
          const who = rec.call_id ? rec.caller : t("without_call");
          drop(rec);
          if (rec.call_id) rememberSaved(rec.call_id);
          if (rec.status === "ringing" || rec.status === "on-call") savedLive = rec;
          if (!rec.customer && m.customer_id) {  // a caller unknown till now, filed under a new customer
            rec.customer = { id: m.customer_id, name: rec.fields.caller_name || rec.caller, address: rec.fields.address || "",
              vip: false, notes: "", recent_calls: [], open_complaints: [], follow_ups: [] };
          }
          status("saved", who);
          render(); askDay();  // stored before form.saved: the day shows it at once
        }
        break;
      }
      case "error": {
        const ref = m.ref ? refs.get(m.ref) : null;
        if (ref) refs.delete(m.ref);
        if (ref && ref.kind === "customer") { $("correction-status").textContent = `${t("not_saved")}: ${m.message}`; break; }
        if (ref && ref.kind === "day") { $("day-status").textContent = t("day_unavailable"); break; }
        if (ref && ref.kind === "preview") { preview = null; renderPreview(); $("command-error").textContent = m.message; break; }
        const rec = ref && records.get(ref.key);
        if (rec && rec.submit && rec.submit.ref === m.ref) {
          if (m.code === "unavailable") { retry(rec); if (rec.key === selected) status("retrying", m.message); }
          else { rec.submit = null; rec.error = m.message; put(rec); if (rec.key === selected) status("not_saved", m.message); }
          renderList();
        } else $("command-error").textContent = m.message;
        break;
      }
    }
  }

  // -- commands ---------------------------------------------------------------------------
  document.addEventListener("desktop-language", () => {
    $("state").textContent = t(shownState[0]); status(...shownStatus); fillClasses(); render(); renderDay(); renderPreview();
  });
  $("login").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("login-error").textContent = "";
    const r = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user_id: $("user_id").value, password: $("password").value }) });
    const body = await r.json();
    if (!r.ok) { $("login-error").textContent = body.error; return; }
    if (agentId !== body.user_id) {  // another agent's desk
      records.clear(); savedLive = null; selected = null; lastDay = null; $("day-rows").replaceChildren();
    }
    agentId = body.user_id;
    $("login-box").hidden = true; $("desk").hidden = false;
    link = connect("/ws/agent", body.token, onMessage, (up) => { $("link").className = up ? "pill on" : "pill off"; },
      () => { $("login-box").hidden = false; $("login-error").textContent = t("session_ended"); });
  });
  const ready = () => { $("command-error").textContent = ""; link.send({ type: "agent.ready", ref: nextRef() }); };
  const notReady = () => link.send({ type: "agent.not_ready", reason: $("reason-input").value || "break", ref: nextRef() });
  const endWrap = () => link.send({ type: "agent.end_wrap_up", ref: nextRef() });
  $("ready").onclick = ready;
  $("not-ready").onclick = notReady;
  $("end-wrap").onclick = endWrap;
  $("day-refresh").onclick = askDay;
  $("dial").onclick = () => {
    $("command-error").textContent = ""; $("dial-status").textContent = "";
    link.send({ type: "agent.dial", number: $("dial-number").value.trim(), ref: nextRef() });
  };
  $("preview-call").onclick = () => {
    if (!preview) return;
    $("command-error").textContent = ""; $("dial-status").textContent = "";
    $("dial-number").value = preview.number;
    // The card goes when the agent does (reserved); a refusal ("callers are waiting") leaves it.
    link.send({ type: "agent.dial", number: preview.number, item_id: preview.id, ref: nextRef() });
  };
  $("preview-skip").onclick = () => { if (preview) askPreview({ type: "agent.preview_skip", item_id: preview.id }); };
  $("transfer").onclick = () => link.send({ type: "call.transfer", target_kind: $("transfer-kind").value, target: $("transfer-target").value, ref: nextRef() });
  // The keyboard: every action without the mouse (Tab moves from field to field).
  document.addEventListener("keydown", (e) => {
    if (!link || !e.altKey || e.ctrlKey || e.metaKey) return;
    const key = e.key.toLowerCase(), digit = /^Digit([1-9])$/.exec(e.code);
    if (e.code === "KeyR" || key === "r") ready();
    else if (e.code === "KeyN" || key === "n") notReady();
    else if (e.code === "KeyE" || key === "e") endWrap();
    else if (e.code === "KeyS" || key === "s") form.requestSubmit();
    else if (e.code === "KeyB" || key === "b") openReadBack();
    else if (e.code === "KeyM" || key === "m") { askDay(); $("day-refresh").focus(); $("day-box").scrollIntoView({ block: "nearest" }); }
    else if (digit) { const r = ordered()[Number(digit[1]) - 1]; if (r) { select(r.key); form.caller_name.focus(); } }
    else return;
    e.preventDefault();
  });
})();
