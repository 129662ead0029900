/* hems dashboard: plain JS, no build step. Reads the northbound API of the admin listener it
 * is served from (/api/v1/status, /api/v1/devices, /api/v1/alarms/active, /api/v1/campaigns,
 * /metrics) every
 * few seconds and follows GET /api/v1/alarms/stream (Server-Sent Events, read with fetch so a
 * bearer token can be sent), resuming from the last event id after a disconnect. */
"use strict";

const POLL_MS = 5000;
const MAX_EVENTS = 50;
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("hems.token") || "";
let lastEventId = null;
let prevMetrics = null;
let refreshTimer = null;

function headers() {
  return token ? { Authorization: "Bearer " + token } : {};
}

function showError(msg) {
  const e = $("error");
  e.textContent = msg || "";
  e.hidden = !msg;
}

async function getJSON(path) {
  const r = await fetch(path, { headers: headers(), cache: "no-store" });
  if (r.status === 401 || r.status === 403) throw new Error("API refused the request (" + r.status + "): enter a valid token");
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

function parseMetrics(text) {
  const m = {};
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const sp = line.lastIndexOf(" ");
    const name = line.slice(0, sp);
    m[name] = (m[name] || 0) + Number(line.slice(sp + 1));
  }
  return m;
}

function fillKV(tbody, obj) {
  tbody.replaceChildren();
  for (const [k, v] of Object.entries(obj)) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    const td = document.createElement("td");
    th.textContent = k;
    td.textContent = String(v);
    td.dataset.key = k;
    tr.append(th, td);
    tbody.append(tr);
  }
}

function fmt(n, digits) {
  return n === undefined || Number.isNaN(n) ? "–" : Number(n).toFixed(digits || 0);
}

async function loadDevices() {
  const states = {}, roles = {};
  let after = null, n = 0;
  for (let page = 0; page < 20; page++) {
    const j = await getJSON("/api/v1/devices?limit=1000" + (after ? "&after=" + encodeURIComponent(after) : ""));
    for (const d of j.devices) {
      states[d.registration] = (states[d.registration] || 0) + 1;
      roles[d.role] = (roles[d.role] || 0) + 1;
      n++;
    }
    if (!j.next) { after = null; break; }
    after = j.next;
  }
  if (after) states["(counted: first " + n + ")"] = "";
  fillKV($("dev-states"), states);
  fillKV($("dev-roles"), roles);
  return n;
}

function sevRank(s) {
  return ["Critical", "Major", "Minor", "Warning", "Indeterminate", "Cleared"].indexOf(s);
}

async function ack(key, btn) {
  btn.disabled = true;
  try {
    const r = await fetch("/api/v1/alarms/" + key + "/ack", {
      method: "POST", headers: Object.assign({ "Content-Type": "application/json" }, headers()),
      body: JSON.stringify({ by: "dashboard" }) });
    if (!r.ok) throw new Error("acknowledge: HTTP " + r.status);
    await loadAlarms();
  } catch (e) {
    showError(e.message);
    btn.disabled = false;
  }
}

async function loadAlarms() {
  const j = await getJSON("/api/v1/alarms/active");
  const list = j.alarms.slice().sort((a, b) => sevRank(a.severity) - sevRank(b.severity) ||
                                              b.event_time_ms - a.event_time_ms);
  const tb = $("alarms-active");
  tb.replaceChildren();
  for (const a of list) {
    const tr = document.createElement("tr");
    tr.dataset.key = a.key;
    const cells = [a.severity, a.device, a.alarm_id, a.probable_cause, a.additional_text,
                   new Date(a.event_time_ms).toISOString()];
    cells.forEach((v, i) => {
      const td = document.createElement("td");
      td.textContent = v;
      if (i === 0) td.className = "sev sev-" + v;
      tr.append(td);
    });
    const td = document.createElement("td");
    if (a.ack) {
      td.textContent = a.ack.by;
      td.title = new Date(a.ack.time_ms).toISOString();
    } else {
      const b = document.createElement("button");
      b.className = "ack";
      b.textContent = "ack";
      b.onclick = () => ack(a.key, b);
      td.append(b);
    }
    tr.append(td);
    tb.append(tr);
  }
  $("alarm-count").textContent = String(list.length) + (j.truncated ? "+" : "");
}

/* Rollout campaigns (docs/campaigns.md): one row each, a bar of the devices that ended. */
async function loadCampaigns() {
  let j;
  try {
    j = await getJSON("/api/v1/campaigns");
  } catch (e) {
    if (/HTTP 404/.test(e.message)) return; /* an older hemsd: no campaigns */
    throw e;
  }
  const tb = $("campaigns");
  tb.replaceChildren();
  for (const c of j.campaigns) {
    const t = c.totals;
    const ended = t.succeeded + t.failed + t.timed_out + t.cancelled;
    const tr = document.createElement("tr");
    tr.dataset.campaign = c.name;
    const bar = document.createElement("progress");
    bar.max = Math.max(1, t.devices);
    bar.value = ended;
    bar.title = ended + " of " + t.devices + " ended";
    const cells = [c.name, c.state, c.wave + "/" + c.waves_total, bar, t.devices, t.succeeded,
                   t.failed + t.timed_out, t.in_progress, c.reason];
    cells.forEach((v, i) => {
      const td = document.createElement("td");
      if (v instanceof Node) td.append(v); else td.textContent = String(v);
      if (i === 1) td.className = "camp camp-" + c.state;
      tr.append(td);
    });
    tb.append(tr);
  }
  $("campaign-count").textContent = String(j.campaigns.length);
}

async function loadMetrics() {
  const r = await fetch("/metrics", { cache: "no-store" });
  if (!r.ok) return;
  const m = parseMetrics(await r.text());
  const now = Date.now();
  $("sessions-active").textContent = fmt(m.hems_cwmp_sessions_active);
  $("sessions-total").textContent = fmt(m.hems_cwmp_sessions_total);
  $("informs-total").textContent = fmt(m.hems_cwmp_informs_total);
  $("sessions-shed").textContent = fmt((m.hems_cwmp_sessions_shed_total || 0) + (m.hems_cwmp_sessions_refused_busy_total || 0));
  $("pm-files").textContent = fmt(m.hems_pm_files_ingested_total);
  $("pm-meas").textContent = fmt(m.hems_pm_measurements_ingested_total);
  $("pm-quarantined").textContent = fmt(m.hems_pm_files_quarantined_total);
  $("pm-spool").textContent = fmt(m.hems_pm_spool_files);
  $("pm-lag").textContent = fmt(m.hems_pm_pipeline_lag_seconds, 1);
  if (prevMetrics) {
    const dt = (now - prevMetrics.t) / 1000;
    const rate = (k) => Math.max(0, ((m[k] || 0) - (prevMetrics.m[k] || 0)) / dt);
    $("session-rate").textContent = fmt(rate("hems_cwmp_sessions_total"), 2);
    $("pm-rate").textContent = fmt(rate("hems_pm_measurements_ingested_total"), 1);
  }
  prevMetrics = { t: now, m };
}

async function refresh() {
  try {
    const st = await getJSON("/api/v1/status");
    $("version").textContent = st.version || "";
    const n = await loadDevices();
    $("dev-total").textContent = String(st.devices !== undefined ? st.devices : n);
    await loadAlarms();
    await loadCampaigns();
    await loadMetrics();
    $("updated").textContent = new Date().toISOString();
    showError("");
  } catch (e) {
    showError(e.message);
  }
}

function scheduleAlarmRefresh() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; loadAlarms().catch((e) => showError(e.message)); }, 300);
}

function onAlarmEvent(id, a) {
  lastEventId = id;
  const li = document.createElement("li");
  li.dataset.key = id;
  li.className = "sev-" + a.severity;
  li.textContent = new Date(a.event_time_ms).toISOString() + " " + a.device + " " + a.alarm_id +
                   " " + a.notification + " " + a.severity + " " + a.probable_cause;
  const ol = $("events");
  ol.prepend(li);
  while (ol.children.length > MAX_EVENTS) ol.lastChild.remove();
  scheduleAlarmRefresh();
}

/* Server-Sent Events over fetch (EventSource cannot send an Authorization header). */
async function follow() {
  const st = $("conn-status");
  for (;;) {
    try {
      const h = headers();
      if (lastEventId) h["Last-Event-ID"] = lastEventId;
      const r = await fetch("/api/v1/alarms/stream", { headers: h, cache: "no-store" });
      if (!r.ok || !r.body) throw new Error("stream: HTTP " + r.status);
      st.textContent = "live";
      st.className = "pill live";
      const rd = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await rd.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let id = null, data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("id:")) id = line.slice(3).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          if (data) onAlarmEvent(id, JSON.parse(data));
        }
      }
    } catch (e) {
      /* reconnect below */
    }
    st.textContent = "reconnecting";
    st.className = "pill down";
    await new Promise((res) => setTimeout(res, 2000));
  }
}

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem("hems.token", token);
  refresh();
});

refresh();
setInterval(refresh, POLL_MS);
follow();
