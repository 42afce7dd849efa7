/* Vigil operator console. Plain JS, no build step.
 * Alert text comes from hostile feeds: it is only ever put in the page as text nodes (textContent,
 * createTextNode, attributes), never parsed as HTML. */
"use strict";
(function () {
  const KEY_STORE = "vigil.console.key";
  const MAX_ALERTS = 1000;
  const state = {
    key: sessionStorage.getItem(KEY_STORE) || "",
    meta: null,
    alerts: [],           // summaries, newest first
    ids: new Set(),
    lastId: null,
    stream: null,         // AbortController of the live feed
    map: null,
    subs: [],
    lastReplay: null,     // {msg, at}: the last replay's outcome, kept in the dead-letter status a while
    healthTimer: null,
    detailTimer: null,
    view: null,
  };
  const $ = (sel, root) => (root || document).querySelector(sel);

  /* --------------------------------------------------------------- DOM helpers (text only) */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  function fmtTime(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return isNaN(d) ? String(iso) : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
  }
  function ago(iso) {
    const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
    if (!isFinite(s)) return "";
    if (s < 60) return `${Math.max(s, 0)} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} d ago`;
  }
  const words = (v) => String(v).replace(/_/g, " ");
  function announce(msg) { const a = $("#announcer"); a.textContent = ""; setTimeout(() => { a.textContent = msg; }, 50); }
  function timeEl(iso) { return el("time", { datetime: iso || "" }, fmtTime(iso)); }

  /* --------------------------------------------------------------- API */
  class AuthError extends Error {}
  async function api(path, opts) {
    opts = opts || {};
    const headers = { Accept: "application/json", Authorization: "Bearer " + state.key };
    let body;
    if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(opts.json); }
    const resp = await fetch(path, { method: opts.method || "GET", headers, body, cache: "no-store" });
    if (resp.status === 401) { signOut("The admin key was refused."); throw new AuthError("401"); }
    let data = null;
    if (resp.status !== 204) { try { data = await resp.json(); } catch (e) { data = null; } }
    return { status: resp.status, ok: resp.ok, data };
  }
  function detailText(data, fallback) {
    if (!data) return fallback;
    if (typeof data.detail === "string") return data.detail;
    return fallback;
  }

  /* --------------------------------------------------------------- sign-in */
  async function signIn(key) {
    state.key = key;
    let r;
    try { r = await api("/console/api/session"); } catch (e) { return false; }
    if (!r.ok) { $("#login-error").textContent = detailText(r.data, `The console answered ${r.status}.`); return false; }
    sessionStorage.setItem(KEY_STORE, key);
    state.meta = r.data;
    setupForms();
    $("#nav").hidden = false; $("#signout").hidden = false;
    return true;
  }
  function signOut(message) {
    sessionStorage.removeItem(KEY_STORE);
    state.key = ""; state.meta = null;
    stopStream();
    $("#nav").hidden = true; $("#signout").hidden = true;
    $("#live-state").textContent = "";
    $("#login-error").textContent = message || "";
    show("login");
  }

  /* --------------------------------------------------------------- routing */
  const VIEWS = ["login", "alerts", "alert", "subscriptions", "health"];
  function show(name, focus) {
    for (const v of VIEWS) $("#view-" + v).hidden = v !== name;
    for (const a of document.querySelectorAll("#nav a")) {
      const current = a.dataset.view === name || (name === "alert" && a.dataset.view === "alerts");
      if (current) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    const titles = { login: "Sign in", alerts: "Alerts", alert: "Alert", subscriptions: "Subscriptions", health: "Pipeline health" };
    document.title = `${titles[name]} · Vigil console`;
    if (focus !== false && state.view !== null) { const h = $(`#view-${name} h2`); if (h) h.focus(); }
    state.view = name;
  }
  async function route() {
    clearInterval(state.healthTimer); clearInterval(state.detailTimer);
    if (!state.key) { show("login"); return; }
    if (!state.meta && !(await signIn(state.key))) { signOut($("#login-error").textContent); return; }
    const hash = location.hash || "#/alerts";
    const m = hash.match(/^#\/alert\/(\d+-\d+)$/);
    if (m) { show("alert"); await loadDetail(m[1]); state.detailTimer = setInterval(() => loadDetail(m[1], true), 4000); return; }
    if (hash === "#/subscriptions") { show("subscriptions"); await loadSubs(); return; }
    if (hash === "#/health") { show("health"); await loadHealth(); state.healthTimer = setInterval(loadHealth, 5000); return; }
    show("alerts");
    if (!state.stream) await loadAlerts();
  }

  /* --------------------------------------------------------------- alerts: list, filters, live feed, map */
  function filters() {
    const f = new FormData($("#filters"));
    return {
      country: String(f.get("country") || "").trim().toUpperCase(),
      threat_type: String(f.get("threat_type") || ""),
      target_type: String(f.get("target_type") || ""),
      min_severity: String(f.get("min_severity") || ""),
      since_s: Number(f.get("since_s") || 0),
    };
  }
  const RANK = { Unknown: 0, Minor: 1, Moderate: 2, Severe: 3, Extreme: 4 };
  function matches(a, f) {  // mirrors vigil_console.views.AlertFilter
    if (f.country && !a.countries.includes(f.country)) return false;
    if (f.threat_type && !a.threat_types.includes(f.threat_type)) return false;
    if (f.target_type && !a.targets.includes(f.target_type)) return false;
    if (f.min_severity && (RANK[a.severity] || 0) < (RANK[f.min_severity] || 0)) return false;
    if (f.since_s && new Date(a.classified_at).getTime() < Date.now() - f.since_s * 1000) return false;
    return true;
  }
  function isCurrent(a) {
    if (a.msg_type === "Cancel") return false;
    return !a.expires || new Date(a.expires).getTime() > Date.now();
  }
  const hrefFor = (a) => "#/alert/" + a.entry_id;

  function alertItem(a, fresh) {
    const places = (a.locations || []).map((l) => l.name).filter((v, i, arr) => arr.indexOf(v) === i);
    return el("li", {},
      el("a", { class: `alert-item sev-${a.severity}${fresh ? " new" : ""}`, href: hrefFor(a), "data-entry-id": a.entry_id },
        el("span", { class: "t" },
          el("span", { class: `badge sev-${a.severity}` }, a.severity),
          a.msg_type === "Cancel" ? el("span", { class: "badge cancel" }, "Cancelled") : null,
          a.title || "(no title)"),
        el("span", { class: "m" },
          [a.threat_types.length ? a.threat_types.map(words).join(", ") : (a.is_threat ? "threat" : "not a threat"),
           places.length ? places.join(", ") : (a.countries.join(", ") || "no place found")].join(" · ")),
        el("span", { class: "m" }, timeEl(a.classified_at), ` (${ago(a.classified_at)}) · ${a.source_name}`,
          a.revision > 1 ? ` · revision ${a.revision}` : "")));
  }
  function renderAlerts(freshId) {
    const f = filters();
    const shown = state.alerts.filter((a) => matches(a, f));
    $("#alert-list").replaceChildren(...shown.map((a) => alertItem(a, a.entry_id === freshId)));
    const total = state.alerts.length;
    $("#alert-count").textContent = shown.length === total
      ? `${total} alert${total === 1 ? "" : "s"}, newest first`
      : `${shown.length} of ${total} alerts match the filters`;
    if (state.map) state.map.update(shown.filter(isCurrent), hrefFor);
  }
  async function loadAlerts() {
    const r = await api("/console/api/alerts");
    if (!r.ok) { $("#alert-count").textContent = detailText(r.data, "Could not load alerts."); return; }
    state.alerts = r.data.alerts; state.ids = new Set(state.alerts.map((a) => a.entry_id));
    state.lastId = r.data.last_id;
    if (!state.map) { state.map = new window.VigilMap($("#map")); state.map.loadOutline("/console/world.json"); }
    renderAlerts();
    startStream();
  }
  function addAlert(a) {
    if (state.ids.has(a.entry_id)) return;
    state.ids.add(a.entry_id);
    state.alerts.unshift(a);
    if (state.alerts.length > MAX_ALERTS) state.ids.delete(state.alerts.pop().entry_id);
    renderAlerts(a.entry_id);
    if (matches(a, filters())) announce(`New ${a.severity} alert: ${a.title}`);
  }

  /* Server-sent events read with fetch (EventSource cannot send the Authorization header). */
  function stopStream() { if (state.stream) state.stream.abort(); state.stream = null; }
  async function startStream() {
    stopStream();
    const ctrl = new AbortController(); state.stream = ctrl;
    const live = $("#live-state");
    while (!ctrl.signal.aborted) {
      try {
        const url = "/console/api/alerts/stream?after=" + encodeURIComponent(state.lastId || "$");
        const resp = await fetch(url, { headers: { Authorization: "Bearer " + state.key, Accept: "text/event-stream" }, signal: ctrl.signal });
        if (resp.status === 401) { signOut("The admin key was refused."); return; }
        if (!resp.ok || !resp.body) throw new Error(String(resp.status));
        live.textContent = "Live"; live.classList.add("on");
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
            let event = "message", data = "", id = null;
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) event = line.slice(6).trim();
              else if (line.startsWith("data:")) data += line.slice(5).trim();
              else if (line.startsWith("id:")) id = line.slice(3).trim();
            }
            if (id) state.lastId = id;
            if (event === "alert" && data) addAlert(JSON.parse(data));
          }
        }
      } catch (err) {
        if (ctrl.signal.aborted) return;
      }
      live.textContent = "Reconnecting…"; live.classList.remove("on");
      await new Promise((res) => setTimeout(res, 2000));
    }
  }

  /* --------------------------------------------------------------- alert detail */
  function kv(pairs) {
    const dl = el("dl", { class: "kv" });
    for (const [k, v] of pairs) {
      if (v === null || v === undefined || v === "" || (Array.isArray(v) && !v.length)) continue;
      dl.append(el("dt", {}, k), el("dd", {}, v instanceof Node ? v : Array.isArray(v) ? v.join(", ") : String(v)));
    }
    return dl;
  }
  const KIND_WORD = { threat: "threat", target: "target", place: "place" };
  function evidenceText(segments) {
    const pre = el("p", { class: "evidence-text", id: "evidence-text" });
    for (const s of segments) {
      if (!s.kind) { pre.append(document.createTextNode(s.text)); continue; }
      const label = `${KIND_WORD[s.kind]}: ${words(s.label)}`;
      pre.append(el("mark", { class: `ev-${s.kind}`, title: label, "data-kind": s.kind, "data-label": s.label }, s.text),
        el("span", { class: "visually-hidden" }, ` (${label})`));
    }
    return pre;
  }
  function journeyList(j) {
    const ol = el("ol", { class: "journey", id: "journey" });
    ol.append(el("li", { class: "step" }, el("strong", {}, "Received "), "from ", j.received.source, " · ", timeEl(j.received.time)));
    ol.append(el("li", { class: "step" }, el("strong", {}, "Classified "), `by ${j.classified.producer} (${j.classified.classifier_version}) · `, timeEl(j.classified.time)));
    if (!j.notifications.length) ol.append(el("li", { class: "step" }, "No notification recorded yet (none matched, or notify has not handled it)."));
    for (const n of j.notifications) {
      const last = n.attempts[n.attempts.length - 1];
      const cls = n.outcome === "delivered" ? "delivered" : "failed";
      ol.append(el("li", { class: `step ${cls}`, "data-subscription": n.subscription_id },
        el("strong", {}, "Notified "), el("span", { class: "tag" }, n.subscription_id), " on ", el("code", {}, n.channel), " · ",
        el("span", { class: `outcome ${cls}` }, n.outcome), ` (${last.kind}, attempt ${last.attempt}) · `, timeEl(n.time),
        last.error ? el("div", { class: "help" }, "Error: ", last.error) : null,
        last.reason ? el("div", { class: "help" }, "Why: ", last.reason) : null));
    }
    for (const d of j.dead_letters) {
      ol.append(el("li", { class: "step failed" }, el("strong", {}, "Dead-lettered "), `by ${d.service}: ${d.error} · `, timeEl(d.time)));
    }
    return ol;
  }
  async function loadDetail(entryId, refresh) {
    const r = await api("/console/api/alerts/" + encodeURIComponent(entryId));
    const box = $("#alert-detail");
    if (!r.ok) { if (!refresh) { $("#alert-h").textContent = "Alert not found"; box.replaceChildren(el("p", { class: "error" }, detailText(r.data, "Could not load the alert."))); } return; }
    const d = r.data, s = d.summary, c = d.classification;
    if (refresh) { const j = $("#journey"); if (j) j.replaceWith(journeyList(d.journey)); return; }
    $("#alert-h").replaceChildren(el("span", { class: `badge sev-${s.severity}` }, s.severity), s.title);
    const cap = d.cap;
    const textCard = el("section", { class: "card", "aria-labelledby": "ev-h" },
      el("h3", { id: "ev-h" }, "Text and evidence"),
      el("ul", { class: "ev-legend", "aria-label": "Highlight key" },
        el("li", {}, el("mark", { class: "ev-threat" }, "threat words")), el("li", {}, el("mark", { class: "ev-target" }, "targets")),
        el("li", {}, el("mark", { class: "ev-place" }, "places"))),
      evidenceText(d.segments),
      d.url ? el("p", { class: "help" }, "Source: ", el("a", { href: /^https?:\/\//i.test(d.url) ? d.url : "#", rel: "noopener noreferrer nofollow", target: "_blank" }, d.url)) : null);
    const classCard = el("section", { class: "card", "aria-labelledby": "cls-h" }, el("h3", { id: "cls-h" }, "Classification"),
      kv([["Threat", c.is_threat ? "yes" : "no"], ["Threat types", c.threat_types.map((t) => `${words(t.type)} (${Math.round(t.confidence * 100)}%)`)],
        ["Targets", c.targets.map((t) => `${words(t.type)} (${Math.round(t.confidence * 100)}%)`)],
        ["Places", c.locations.map((l) => `${l.name}, ${l.country_code} (${l.kind})`)], ["Countries", s.countries],
        ["Severity", c.severity], ["Urgency", c.urgency], ["Certainty", c.certainty], ["Classifier", c.classifier_version]]));
    const capCard = el("section", { class: "card", "aria-labelledby": "cap-h" }, el("h3", { id: "cap-h" }, "CAP values"),
      cap ? kv([["Identifier", cap.identifier], ["Sender", cap.sender], ["Sent", timeEl(cap.sent)], ["Message type", cap.msg_type],
        ["Status", cap.status], ["Scope", cap.scope], ["Event", cap.event], ["Urgency", cap.urgency], ["Severity", cap.severity],
        ["Certainty", cap.certainty], ["Categories", cap.categories], ["Expires", cap.expires ? timeEl(cap.expires) : null],
        ["Areas", (cap.areas || []).map((a) => a.area_desc)], ["Instruction", cap.instruction], ["References", cap.references]])
        : el("p", { class: "help" }, "The source sent no CAP document; Vigil's own CAP values are under Classification."));
    const metaCard = el("section", { class: "card", "aria-labelledby": "meta-h" }, el("h3", { id: "meta-h" }, "Alert"),
      kv([["Alert id", s.alert_id], ["Revision", s.revision > 1 ? `${s.revision} (of ${s.revision_of})` : "1"],
        ["Correlation id", s.correlation_id], ["Source", `${s.source_kind}: ${s.source_name}`], ["Issuer", s.issuer],
        ["Published", d.published ? timeEl(d.published) : null], ["Language", d.language]]));
    const previewOut = el("div", { class: "preview-result", id: "preview-result", role: "status", "aria-live": "polite" });
    const previewBtn = el("button", { type: "button", id: "preview-btn", onclick: () => runPreview(entryId, previewOut, previewBtn) }, "Who would get this alert?");
    const journeyCard = el("section", { class: "card", "aria-labelledby": "jr-h" }, el("h3", { id: "jr-h" }, "Journey"),
      journeyList(d.journey), el("h3", {}, "Preview"), previewBtn, previewOut);
    box.replaceChildren(el("div", { class: "detail-grid" },
      el("div", {}, textCard, journeyCard), el("div", {}, classCard, capCard, metaCard)));
  }
  async function runPreview(entryId, out, btn) {
    btn.disabled = true; out.replaceChildren("Asking notify…");
    try {
      const r = await api(`/console/api/alerts/${encodeURIComponent(entryId)}/preview`, { method: "POST" });
      if (!r.ok) { out.replaceChildren(el("p", { class: "error" }, detailText(r.data, `Preview failed (${r.status}).`))); return; }
      const m = r.data.matches;
      out.replaceChildren(
        el("p", {}, `${m.length} of ${r.data.subscriptions_checked} subscriptions would get it now.`),
        el("ul", {}, m.map((x) => el("li", {}, el("strong", {}, x.name), ` (${x.subscription_id}) on `, x.channels.join(", "),
          el("div", { class: "help" }, x.explanation)))));
    } finally { btn.disabled = false; }
  }

  /* --------------------------------------------------------------- subscriptions */
  function setupForms() {
    const m = state.meta;
    const fill = (sel, values, anyLabel) => {
      const s = $(sel); s.replaceChildren(...(anyLabel ? [el("option", { value: "" }, anyLabel)] : []),
        ...values.map((v) => el("option", { value: v }, words(v))));
    };
    fill("#f-threat", m.threat_types, "Any"); fill("#f-target", m.target_types, "Any");
    fill("#f-severity", m.severities.filter((v) => v !== "Unknown"), "Any");
    fill("#s-minsev", m.severities.slice().reverse()); fill("#s-minurg", m.urgencies.filter((v) => v !== "Past").reverse());
    const checks = (sel, name, values) => $(sel).replaceChildren(...values.map((v) =>
      el("label", {}, el("input", { type: "checkbox", name, value: v }), words(v))));
    checks("#s-threats", "threat_types", m.threat_types); checks("#s-targets", "target_types", m.target_types);
    resetSubForm();
  }
  function subLine(s) {
    const f = s.filter || {};
    const where = [...(f.countries || []), ...(f.places || []).map((p) => (typeof p === "object" ? (p.name || p.geonameid) : p)),
      f.near ? `${f.near.radius_km} km around ${f.near.lat}, ${f.near.lon}` : null].filter(Boolean);
    const what = [...(f.threat_types || []).map(words), ...(f.target_types || []).map(words)];
    return [where.length ? where.join(", ") : "anywhere", what.length ? what.join(", ") : "any threat",
      f.min_severity && f.min_severity !== "Unknown" ? `≥ ${f.min_severity}` : null].filter(Boolean).join(" · ");
  }
  async function loadSubs() {
    const r = await api("/console/api/subscriptions");
    const status = $("#subs-status");
    if (!r.ok) { status.textContent = detailText(r.data, `Could not load subscriptions (${r.status}).`); return; }
    state.subs = r.data;
    status.textContent = `${r.data.length} subscription${r.data.length === 1 ? "" : "s"}`;
    $("#sub-list").replaceChildren(...r.data.map((s) => el("li", { class: s.enabled ? "" : "disabled", "data-id": s.id },
      el("div", { class: "t" }, s.name), el("div", { class: "m" }, `${s.id}${s.owner ? " · " + s.owner : ""}`),
      el("div", { class: "m" }, subLine(s)), el("div", { class: "m" }, s.channels.join(", ")),
      s.managed_by ? el("div", { class: "m" }, `Managed by ${s.managed_by} (edits are overwritten at notify's next start)`) : null,
      el("div", { class: "btns" },
        el("button", { type: "button", class: "secondary", "aria-label": `Edit ${s.name}`, onclick: () => editSub(s) }, "Edit"),
        el("button", { type: "button", class: "danger", "aria-label": `Delete ${s.name}`, onclick: () => deleteSub(s) }, "Delete")))));
  }
  function clearErrors() {
    const form = $("#sub-form");
    for (const n of form.querySelectorAll(".field-error")) n.remove();
    for (const n of form.querySelectorAll("[aria-invalid]")) { n.removeAttribute("aria-invalid"); n.removeAttribute("aria-describedby"); }
    $("#sub-errors").hidden = true; $("#sub-errors").replaceChildren();
  }
  function resetSubForm() {
    const form = $("#sub-form");
    form.reset(); clearErrors();
    form.elements.editing.value = ""; form.elements.id.readOnly = false;
    $("#sub-form-h").textContent = "New subscription"; $("#sub-save").textContent = "Create subscription";
  }
  function editSub(s) {
    resetSubForm();
    const form = $("#sub-form"), f = s.filter || {}, e = form.elements;
    e.editing.value = s.id; e.id.value = s.id; e.id.readOnly = true;
    e.name.value = s.name; e.owner.value = s.owner || ""; e.channels.value = s.channels.join("\n"); e.enabled.checked = s.enabled;
    e.countries.value = (f.countries || []).join(", ");
    e.places.value = (f.places || []).map((p) => (typeof p === "object" ? JSON.stringify(p) : String(p))).join("\n");
    e.lat.value = f.near ? f.near.lat : ""; e.lon.value = f.near ? f.near.lon : ""; e.radius_km.value = f.near ? f.near.radius_km : "";
    for (const c of form.querySelectorAll("input[name=threat_types]")) c.checked = (f.threat_types || []).includes(c.value);
    for (const c of form.querySelectorAll("input[name=target_types]")) c.checked = (f.target_types || []).includes(c.value);
    e.min_severity.value = f.min_severity || "Unknown"; e.min_urgency.value = f.min_urgency || "Unknown";
    e.active_from.value = f.active && f.active.from ? f.active.from : ""; e.active_until.value = f.active && f.active.until ? f.active.until : "";
    e.include_non_threats.checked = !!f.include_non_threats;
    form.dataset.original = JSON.stringify(s);
    $("#sub-form-h").textContent = `Edit ${s.name}`; $("#sub-save").textContent = "Save changes";
    $("#sub-form-h").focus();
  }
  function numberOrText(v) { const t = String(v).trim(); return t !== "" && !isNaN(Number(t)) ? Number(t) : t; }
  function formPayload() {
    const form = $("#sub-form"), e = form.elements;
    const lines = (v) => String(v).split("\n").map((x) => x.trim()).filter(Boolean);
    const original = e.editing.value && form.dataset.original ? JSON.parse(form.dataset.original) : {};
    const filter = Object.assign({}, original.filter || {});
    filter.countries = String(e.countries.value).split(",").map((x) => x.trim()).filter(Boolean);
    filter.places = lines(e.places.value).map((p) => { if (p.startsWith("{")) { try { return JSON.parse(p); } catch (err) { return p; } } return p; });
    const near = [e.lat.value, e.lon.value, e.radius_km.value].map((x) => String(x).trim());
    if (near.some(Boolean)) filter.near = { lat: numberOrText(near[0]), lon: numberOrText(near[1]), radius_km: numberOrText(near[2]) };
    else delete filter.near;
    filter.threat_types = [...form.querySelectorAll("input[name=threat_types]:checked")].map((c) => c.value);
    filter.target_types = [...form.querySelectorAll("input[name=target_types]:checked")].map((c) => c.value);
    filter.min_severity = e.min_severity.value; filter.min_urgency = e.min_urgency.value;
    if (e.active_from.value || e.active_until.value) filter.active = { from: e.active_from.value || null, until: e.active_until.value || null };
    else delete filter.active;
    filter.include_non_threats = e.include_non_threats.checked;
    const body = { name: e.name.value.trim(), owner: e.owner.value.trim(), channels: lines(e.channels.value), enabled: e.enabled.checked, filter };
    if (e.id.value.trim()) body.id = e.id.value.trim();
    return body;
  }
  function fieldBox(field) {
    const form = $("#sub-form");
    const parts = field.split(".");
    for (let n = parts.length; n > 0; n--) {
      const box = form.querySelector(`[data-field="${CSS.escape(parts.slice(0, n).join("."))}"]`);
      if (box) return box;
    }
    if (field.startsWith("filter.near")) return form.querySelector('[data-field="filter.near.lat"]');
    if (field.startsWith("filter.active")) return form.querySelector('[data-field="filter.active.from"]');
    return null;
  }
  function showErrors(status, data) {
    clearErrors();
    const summary = $("#sub-errors");
    const problems = Array.isArray(data && data.detail) ? data.detail : [{ field: "", msg: detailText(data, `The API answered ${status}.`) }];
    const list = el("ul");
    problems.forEach((p, i) => {
      const field = String(p.field || "").replace(/^body\.?/, "");
      const box = field ? fieldBox(field) : null;
      const label = field || "subscription";
      list.append(el("li", {}, `${label}: ${p.msg}`));
      if (box) {
        const id = `err-${i}`;
        box.append(el("p", { class: "field-error", id }, p.msg));
        const input = box.matches("fieldset") ? box.querySelector("input") : box.querySelector("input, select, textarea");
        if (input) { input.setAttribute("aria-invalid", "true"); input.setAttribute("aria-describedby", id); }
      }
    });
    summary.replaceChildren(el("strong", {}, `The subscription was not saved (${problems.length} problem${problems.length === 1 ? "" : "s"}):`), list);
    summary.hidden = false; summary.focus();
  }
  async function saveSub(ev) {
    ev.preventDefault();
    const form = $("#sub-form"), editing = form.elements.editing.value;
    const body = formPayload();
    const r = editing
      ? await api(`/console/api/subscriptions/${encodeURIComponent(editing)}`, { method: "PUT", json: body })
      : await api("/console/api/subscriptions", { method: "POST", json: body });
    if (!r.ok) { showErrors(r.status, r.data); return; }
    resetSubForm();
    await loadSubs();
    const msg = `Subscription ${r.data.name} ${editing ? "saved" : "created"}.`;
    $("#subs-status").textContent = msg; announce(msg);
  }
  async function deleteSub(s) {
    if (!window.confirm(`Delete subscription "${s.name}" (${s.id})?`)) return;
    const r = await api(`/console/api/subscriptions/${encodeURIComponent(s.id)}`, { method: "DELETE" });
    await loadSubs();
    const msg = r.ok ? `Subscription ${s.name} deleted.` : detailText(r.data, `Delete failed (${r.status}).`);
    $("#subs-status").textContent = msg; announce(msg);
  }

  /* --------------------------------------------------------------- health and dead letters */
  function cell(v, cls) { return el("td", { class: cls || "" }, v === null || v === undefined ? "—" : v); }
  async function loadHealth() {
    const [h, d] = await Promise.all([api("/console/api/health"), api("/console/api/deadletters?limit=50")]);
    if (!h.ok) { $("#health-updated").textContent = detailText(h.data, "Could not load health."); return; }
    $("#health-updated").textContent = `Updated ${new Date().toLocaleTimeString()} · refreshes every 5 s`;
    const probs = h.data.problems;
    $("#health-problems").replaceChildren(probs.length
      ? el("div", { class: "problems", role: "alert" }, el("strong", {}, "Problems"), el("ul", {}, probs.map((p) => el("li", {}, p))))
      : el("p", { class: "ok" }, "No problems: every group keeps up."));
    const rows = [];
    for (const s of h.data.streams) {
      if (!s.groups.length) { rows.push(el("tr", {}, el("th", { scope: "row" }, s.stream), cell(s.exists ? s.length : "not created yet", "num"), cell("—"), cell(""), cell(""), cell(""), cell(""), cell(""))); continue; }
      s.groups.forEach((g, i) => rows.push(el("tr", {}, i === 0 ? el("th", { scope: "row", rowspan: s.groups.length }, s.stream) : null,
        i === 0 ? el("td", { class: "num", rowspan: s.groups.length }, String(s.length)) : null,
        cell(g.name), cell(g.lag, "num"), cell(g.pending, "num"),
        cell(g.oldest_pending_age_s === null ? "—" : `${Math.round(g.oldest_pending_age_s)} s`, "num"),
        cell(g.consumers, g.consumers ? "num" : "num bad"), cell(g.dead_letters, g.dead_letters ? "num bad" : "num"))));
    }
    $("#streams-table tbody").replaceChildren(...rows);
    const feeds = h.data.feeds;
    $("#feeds-table tbody").replaceChildren(...(feeds.length ? feeds.map((f) => el("tr", {},
      el("th", { scope: "row" }, f.name || "?", el("div", { class: "help" }, f.url || "")),
      el("td", { class: f.health === "failing" ? "bad" : f.health === "ok" ? "ok" : "" }, f.health),
      el("td", {}, f.last_success ? timeEl(f.last_success) : "never"), cell(f.consecutive_failures, "num"),
      cell(f.last_error ? `${f.last_error}${f.last_status ? " (HTTP " + f.last_status + ")" : ""}` : "—"),
      el("td", {}, f.next_poll_at ? timeEl(f.next_poll_at) : "—"))) : [el("tr", {}, el("td", { colspan: 6 }, "No polled feeds (ingest has no feed state in Redis)."))]));
    if (d.ok) renderDeadLetters(d.data.dead_letters, h.data.dead_letters);
  }
  function renderDeadLetters(list, total) {
    const count = total ? `${total} dead letter${total === 1 ? "" : "s"} (newest ${list.length} shown)` : "No dead letters.";
    // the outcome of the last replay stays in view for a while: the refresh that follows it (and the
    // 5-second one) must not wipe it before anyone has read it
    const recent = state.lastReplay && Date.now() - state.lastReplay.at < 30000 ? `${state.lastReplay.msg} ` : "";
    $("#dlq-status").textContent = recent + count;
    const open = new Set([...document.querySelectorAll("#dlq-list details[open]")].map((x) => x.dataset.id));
    $("#dlq-list").replaceChildren(...list.map((x) => el("li", { "data-id": x.id },
      el("div", {}, el("strong", {}, `${x.service} / ${x.stream}`), ` · ${x.attempts} attempt${x.attempts === 1 ? "" : "s"} · `, timeEl(x.occurred_at)),
      el("div", { class: "bad" }, x.error),
      el("details", { "data-id": x.id, open: open.has(x.id) },
        el("summary", {}, `Inspect ${x.id}`),
        el("pre", {}, JSON.stringify(x.body !== undefined && x.body !== null ? x.body : x.fields, null, 2))),
      el("div", { class: "btns" }, el("button", { type: "button", "aria-label": `Replay dead letter ${x.id}`, onclick: (ev) => replay(x, ev.target) }, "Replay")))));
  }
  async function replay(x, btn) {
    if (!window.confirm(`Replay ${x.id} into ${x.stream}?`)) return;
    btn.disabled = true;
    const r = await api(`/console/api/deadletters/${encodeURIComponent(x.id)}/replay`, { method: "POST" });
    const msg = r.ok ? `Dead letter ${x.id} replayed into ${x.stream}.` : detailText(r.data, `Replay failed (${r.status}).`);
    state.lastReplay = { msg, at: Date.now() };
    $("#dlq-status").textContent = msg; announce(msg);
    await loadHealth();
  }

  /* --------------------------------------------------------------- wiring */
  document.addEventListener("DOMContentLoaded", () => {
    $("#login-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const key = $("#admin-key").value;
      $("#login-error").textContent = "";
      if (await signIn(key)) { $("#admin-key").value = ""; if (!location.hash || location.hash === "#/login") location.hash = "#/alerts"; else route(); }
    });
    $("#signout").addEventListener("click", () => signOut("Signed out."));
    $("#filters").addEventListener("input", () => renderAlerts());
    $("#filters").addEventListener("change", () => renderAlerts());
    $("#filters").addEventListener("reset", () => setTimeout(() => renderAlerts(), 0));
    $("#filters").addEventListener("submit", (ev) => ev.preventDefault());
    $("#sub-form").addEventListener("submit", saveSub);
    $("#sub-cancel").addEventListener("click", resetSubForm);
    $("#new-sub").addEventListener("click", () => { resetSubForm(); $("#s-name").focus(); });
    window.addEventListener("hashchange", route);
    route();
  });
})();
