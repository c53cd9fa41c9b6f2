// The proxy's dashboard: polls the API beside it and redraws. No
// framework, no build step, nothing fetched from another origin.
"use strict";

const API = "../api/";
const POLL_MS = 2000;
let previous = null; // the last live figures, for rates and percentiles

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function get(path) {
  const r = await fetch(API + path, { cache: "no-store" });
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

function fill(tableId, rows) {
  const body = document.querySelector("#" + tableId + " tbody");
  body.replaceChildren(...rows);
}

function status(s) {
  return el("td", { class: "status " + s }, s);
}

function list(items) {
  return (items || []).join(", ");
}

// Rate per second of a counter between two readings.
function rate(now, before, dt) {
  if (before === undefined || dt <= 0) return null;
  return Math.max(0, now - before) / dt;
}

// The q-quantile (upper bucket bound, seconds) of the samples between two
// cumulative histograms.
function quantile(now, before, q) {
  if (!now || !now.buckets) return null;
  const prev = before && before.buckets ? before.buckets : null;
  const total = now.count - (before ? before.count : 0);
  if (total <= 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  for (let i = 0; i < now.buckets.length; i++) {
    const seen = now.buckets[i][1] - (prev ? prev[i][1] : 0);
    if (seen >= rank) return now.buckets[i][0];
  }
  return Infinity;
}

function fmtRate(v) {
  return v === null ? "—" : v.toFixed(v < 10 ? 2 : 0);
}

function fmtSecs(v) {
  if (v === null) return "—";
  if (v === Infinity) return "> last bucket";
  return v < 1 ? "≤ " + Math.round(v * 1000) + " ms" : "≤ " + v + " s";
}

function fmtNanos(n) {
  if (n >= Number.MAX_SAFE_INTEGER) return "more";
  if (n >= 1e6) return (n / 1e6) + "ms";
  if (n >= 1e3) return (n / 1e3) + "µs";
  return n + "ns";
}

// A series that appeared since the last reading started from zero.
const ZERO = { requests: 0, codes: {}, count: 0, buckets: null };

function figureCells(kind, name, live, dt) {
  const now = live && live[kind] ? live[kind][name] : undefined;
  const before = previous ? ((previous[kind] || {})[name] || ZERO) : undefined;
  if (!now) return [el("td", { class: "num" }, "—"), el("td", { class: "num" }, "—"), el("td", { class: "num" }, "—"), el("td", { class: "num" }, "—")];
  const errs = (f) => (f && f.codes ? (f.codes["5xx"] || 0) : 0);
  return [
    el("td", { class: "num rate" }, fmtRate(rate(now.requests, before ? before.requests : undefined, dt))),
    el("td", { class: "num" }, fmtRate(rate(errs(now), before ? errs(before) : undefined, dt))),
    el("td", { class: "num" }, fmtSecs(quantile(now, before, 0.5))),
    el("td", { class: "num" }, fmtSecs(quantile(now, before, 0.99))),
  ];
}

function drawOverview(o) {
  const cards = [];
  for (const [what, s] of Object.entries(o.http)) {
    cards.push(el("div", { class: "card", "data-section": what }, el("b", {}, s.total), what,
      s.errors ? el("div", { class: "status disabled" }, s.errors + " disabled") : null,
      s.warnings ? el("div", { class: "status warning" }, s.warnings + " warnings") : null));
  }
  const c = o.certificates || { total: 0 };
  cards.push(el("div", { class: "card", "data-section": "certificates" }, el("b", {}, c.total), "certificates",
    c.errors ? el("div", { class: "status disabled" }, c.errors + " expired") : null,
    c.warnings ? el("div", { class: "status warning" }, c.warnings + " expiring") : null));
  cards.push(el("div", { class: "card" }, el("b", {}, o.providers ? o.providers.join(", ") : "—"), "providers"));
  document.getElementById("overview").replaceChildren(...cards);
}

function drawDecision(live) {
  const box = document.getElementById("decision");
  const now = live.decisionNanos;
  const prev = previous ? previous.decisionNanos : null;
  const counts = now.map((b, i) => Math.max(0, b[1] - (prev ? prev[i][1] : 0)));
  const max = Math.max(1, ...counts);
  box.replaceChildren(...now.map((b, i) => {
    const bar = el("div", { class: "bar", title: counts[i] + " decisions ≤ " + fmtNanos(b[0]) },
      el("span", {}, fmtNanos(b[0])));
    bar.style.height = (100 * counts[i] / max) + "%"; // CSSOM: allowed by the page's CSP
    return bar;
  }));
}

async function refresh() {
  const [overview, entrypoints, routers, services, middlewares, certificates, live, reloads] = await Promise.all([
    get("overview"), get("entrypoints"), get("http/routers?per_page=1000"),
    get("http/services?per_page=1000"), get("http/middlewares?per_page=1000"),
    get("certificates?per_page=1000&sortBy=validUntil"), get("proxy/live"), get("proxy/reloads"),
  ]);
  const dt = previous ? (Date.parse(live.at) - Date.parse(previous.at)) / 1000 : 0;
  drawOverview(overview);

  const note = document.getElementById("metrics-note");
  if (!live.metrics) {
    note.hidden = false;
    note.textContent = "Request rates, error rates and latencies need metrics.prometheus in the static configuration (addRoutersLabels: true for routers); they are not recorded now.";
  } else if (!live.routerLabels) {
    note.hidden = false;
    note.textContent = "Per-router figures need metrics.prometheus.addRoutersLabels: true; services are shown.";
  } else {
    note.hidden = true;
  }

  fill("entrypoints", entrypoints.map((e) => {
    const t = e.transport.respondingTimeouts || {};
    return el("tr", { "data-name": e.name }, el("td", {}, e.name), el("td", {}, e.address),
      el("td", {}, [t.readTimeout || "0s", t.idleTimeout || "0s", t.writeTimeout || "0s"].join(" / ")));
  }));

  fill("routers", routers.map((r) => el("tr", { "data-name": r.name, "data-status": r.status },
    status(r.status), el("td", {}, r.name), el("td", {}, el("code", {}, r.rule || "")),
    el("td", { class: "num" }, r.priorityStr || ""), el("td", {}, list(r.using || r.entryPoints)),
    el("td", {}, r.service || ""), el("td", {}, list(r.middlewares)), el("td", {}, r.tls ? "yes" : "no"),
    ...figureCells("routers", r.name, live, dt))));

  fill("services", services.map((s) => {
    const servers = el("td", {});
    for (const [url, st] of Object.entries(s.serverStatus || {})) {
      servers.append(el("span", { class: "server " + st.toLowerCase(), "data-url": url }, url + " " + st));
    }
    return el("tr", { "data-name": s.name, "data-status": s.status }, status(s.status), el("td", {}, s.name),
      el("td", {}, s.type || "internal"), servers, el("td", {}, list(s.usedBy)),
      ...figureCells("services", s.name, live, dt));
  }));

  fill("middlewares", middlewares.map((m) => el("tr", { "data-name": m.name, "data-status": m.status },
    status(m.status), el("td", {}, m.name), el("td", {}, m.type || ""), el("td", {}, list(m.usedBy)))));

  // Expired certificates are shown as the disabled elements are.
  fill("certificates", certificates.map((c) => el("tr", { "data-name": c.name, "data-cn": c.commonName, "data-status": c.status },
    el("td", { class: "status " + (c.status === "expired" ? "disabled" : c.status) }, c.status), el("td", {}, c.commonName),
    el("td", {}, list(c.sans)), el("td", {}, c.issuerOrg || c.issuerCN || ""), el("td", {}, c.notAfter),
    el("td", {}, c.keyType + (c.keySize ? " " + c.keySize : "")))));

  const errors = [];
  for (const item of [...routers, ...services, ...middlewares]) {
    for (const e of item.error || []) errors.push(el("li", { "data-name": item.name }, item.name + ": " + e));
  }
  document.getElementById("errors").replaceChildren(...(errors.length ? errors : [el("li", { class: "muted" }, "none")]));

  drawDecision(live);

  fill("reloads", reloads.slice().reverse().map((r) => el("tr", { "data-generation": r.generation, "data-result": r.result },
    el("td", { class: "num" }, r.generation), el("td", {}, r.at), el("td", { class: "num" }, r.durationMs.toFixed(1) + " ms"),
    el("td", { class: "status " + (r.result === "applied" ? "enabled" : "disabled") }, r.result),
    el("td", {}, r.result === "applied" ? (r.disabled ? r.disabled + " elements disabled" : "") : (r.errors || []).join("\n")))));

  previous = live;
  document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString();
  document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
}

async function start() {
  try {
    const v = await get("version");
    document.getElementById("version").textContent = "v" + v.Version;
    if (v.dashboardName) {
      document.getElementById("title").textContent = v.dashboardName;
      document.title = v.dashboardName;
    }
  } catch (e) { /* the lists below say what is wrong */ }
  const loop = async () => {
    try { await refresh(); } catch (e) { document.getElementById("status").textContent = "error: " + e.message; }
    setTimeout(loop, POLL_MS);
  };
  loop();
}

start();
