// The agent page: log in, then one websocket; the pop, the ring count, state
// commands and the call form. No build step.
(function () {
  applyTexts();
  const $ = (id) => document.getElementById(id);
  let link = null, current = null, lastRef = 0;
  const nextRef = () => `r${++lastRef}`;

  function localIso(value) {
    if (!value) return null;
    const d = new Date(value);
    const off = -d.getTimezoneOffset(), sign = off >= 0 ? "+" : "-", abs = Math.abs(off);
    return `${value}:00${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
  }
  function nowLocal() { const d = new Date(); d.setMinutes(d.getMinutes() - d.getTimezoneOffset()); return d.toISOString().slice(0, 16); }
  function list(el, items, fmt) { el.replaceChildren(...items.map((i) => { const li = document.createElement("li"); li.textContent = fmt(i); return li; })); }

  function showState(state, reason) {
    $("state").textContent = t(state); $("state").dataset.state = state;
    $("reason").textContent = reason ? `(${reason})` : "";
  }
  function showPop(pop) {
    current = pop;
    $("no-call").hidden = true; $("call").hidden = false;
    $("ring-count").textContent = pop.ring || 1;
    $("greeting-text").textContent = pop.greeting;
    $("caller-number").textContent = pop.caller; $("caller-name").textContent = pop.caller_name || "";
    const c = pop.customer;
    $("customer-name").textContent = c ? c.name : t("unknown_caller");
    $("customer-vip").hidden = !(c && c.vip);
    $("customer-address").textContent = c && c.address ? c.address : "";
    $("customer-notes").textContent = c && c.notes ? c.notes : "";
    list($("recent-calls"), c ? c.recent_calls : [], (x) => `${x.arrived_at} ${x.outcome || ""} ${x.agent_id || ""}`);
    list($("complaints"), c ? c.open_complaints : [], (x) => `${x.class}: ${x.matter} (→ ${x.deadline_at})`);
    list($("follow-ups"), c ? c.follow_ups : [], (x) => `${x.kind} ${x.due_at}`);
    $("call-status").textContent = "";
    const f = $("call-form");
    f.reset(); f.called_at.value = nowLocal();
    f.caller_name.value = c ? c.name : (pop.caller_name || "");
    f.address.value = c && c.address ? c.address : ""; f.contact.value = pop.caller;
  }
  function closePop(text) {
    $("call-status").textContent = text;
    setTimeout(() => { if (!current) { $("call").hidden = true; $("no-call").hidden = false; } }, 1500);
    current = null;
  }

  function onMessage(m) {
    switch (m.type) {
      case "hello":
        $("who").textContent = `${m.agent.name} (${m.agent.number})`;
        showState(m.state, m.reason);
        if (m.calls && m.calls.length) showPop(m.calls[m.calls.length - 1]);
        break;
      case "call.offered": showPop(m); break;
      case "call.ring": if (current && current.call_id === m.call_id) $("ring-count").textContent = m.ring; break;
      case "call.answered": $("call-status").textContent = `${t("on-call")} · ${t("ring")} ${m.rings}`; break;
      case "call.offer_ended": if (current && current.call_id === m.call_id) closePop(m.outcome); break;
      case "call.ended": $("call-status").textContent = `${t("hung_up_by")}: ${m.hung_up_by}`; current = null; break;
      case "agent.state": showState(m.state, m.reason); break;
      case "form.saved": $("form-status").textContent = t("saved"); break;
      case "error":
        if (m.code === "unavailable" || m.code === "invalid-form") $("form-status").textContent = `${t("not_saved")}: ${m.message}`;
        else $("command-error").textContent = m.message;
        break;
    }
  }

  $("login").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("login-error").textContent = "";
    const r = await fetch("/api/login", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user_id: $("user_id").value, password: $("password").value }) });
    const body = await r.json();
    if (!r.ok) { $("login-error").textContent = body.error; return; }
    $("login-box").hidden = true; $("desk").hidden = false;
    link = connect("/ws/agent", body.token, onMessage, (up) => { $("link").className = up ? "pill on" : "pill off"; },
      () => { $("login-box").hidden = false; $("login-error").textContent = t("session_ended"); });
  });
  $("ready").onclick = () => { $("command-error").textContent = ""; link.send({ type: "agent.ready", ref: nextRef() }); };
  $("not-ready").onclick = () => link.send({ type: "agent.not_ready", reason: $("reason-input").value || "break", ref: nextRef() });
  $("end-wrap").onclick = () => link.send({ type: "agent.end_wrap_up", ref: nextRef() });
  $("transfer").onclick = () => link.send({ type: "call.transfer", target_kind: $("transfer-kind").value, target: $("transfer-target").value, ref: nextRef() });
  $("call-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = e.target, form = { id: `form-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`, category: f.category.value };
    for (const name of ["caller_name", "address", "service_requested", "contact", "special_requests", "complaint_matter", "notes"])
      if (f[name].value) form[name] = f[name].value;
    for (const name of ["called_at", "appointment_at", "complaint_occurred_at"])
      if (f[name].value) form[name] = localIso(f[name].value);
    form.satisfaction_asked = f.satisfaction_asked.checked; form.read_back_done = f.read_back_done.checked;
    if (f.satisfaction_score.value) form.satisfaction_score = Number(f.satisfaction_score.value);
    if (current) form.call_id = current.call_id;
    if (current && current.customer) form.customer_id = current.customer.id;
    $("form-status").textContent = "…";
    link.send({ type: "form.submit", form, ref: nextRef() });
  });
})();
