// The triogate admin UI: reads the admin API with the token the user typed, and redraws
// every REFRESH_MS. Plain DOM (textContent only: nothing from the API is parsed as HTML).
"use strict";

const TOKEN_KEY = "triogate-admin-token";
const REFRESH_MS = 1500;

class AuthError extends Error {}

const $ = (id) => document.getElementById(id);
let timer = null;
let configVersion = null;
let session = 0; // bumped by logout: a refresh still in flight then draws nothing

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(path) {
  const response = await fetch(path, {
    headers: { Authorization: "Bearer " + token() },
    cache: "no-store",
  });
  if (response.status === 401) {
    throw new AuthError("the admin token was refused");
  }
  if (!response.ok) {
    throw new Error(path + " answered " + response.status);
  }
  return response.json();
}

// ------------------------------------------------------------------ small DOM helpers

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    tr.append(cell instanceof Node ? cell : el("td", cell));
  }
  return tr;
}

function fill(tableId, rows, empty) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren(...rows);
  if (rows.length === 0) {
    const td = el("td", empty, "muted");
    td.colSpan = $(tableId).querySelectorAll("thead th").length;
    body.append(row([td]));
  }
}

function num(value, digits) {
  if (value === null || value === undefined) return el("td", "–", "num muted");
  return el("td", digits === undefined ? value : Number(value).toFixed(digits), "num");
}

function duration(seconds) {
  const s = Math.floor(seconds);
  if (s < 120) return s + " s";
  if (s < 7200) return Math.floor(s / 60) + " min";
  if (s < 172800) return Math.floor(s / 3600) + " h";
  return Math.floor(s / 86400) + " d";
}

// ------------------------------------------------------------------ the sections

function renderStatus(status) {
  const workers = status.workers > 1 ? status.workers + " workers" : "1 worker";
  $("summary").textContent = "v" + status.version + " · config version " + status.config_version + " · " +
    workers + " · up " + duration(status.uptime_seconds) + " · " + status.open_connections +
    " open connections · " + status.in_flight + " in flight" + (status.draining ? " · draining" : "");
  const box = $("reload");
  const last = status.last_reload;
  if (!last) {
    box.replaceChildren(el("p", "No reload since the gateway started (" + status.started_at + ").", "muted"));
    return;
  }
  const head = el("p", (last.ok ? "Last reload applied" : "Last reload rejected") + " at " + last.time +
    (last.ok ? "" : ": the running config keeps serving"), last.ok ? "ok" : "bad");
  head.id = "reload-result";
  const parts = [head];
  if (last.errors && last.errors.length) {
    const list = el("ul", null, "errors");
    for (const e of last.errors) list.append(el("li", e));
    parts.push(list);
  }
  box.replaceChildren(...parts);
}

function renderRoutes(routes) {
  fill("routes", routes.map((r, i) => {
    const tr = row([i + 1, r.route, r.path, r.match,
      r.methods.length ? r.methods.join(" ") : "any", r.hosts.length ? r.hosts.join(" ") : "any",
      r.upstream || "–", r.plugins.length ? r.plugins.join(" → ") : "–"]);
    tr.dataset.route = r.route;
    return tr;
  }), "no routes");
}

function renderPlugins(plugins) {
  const usedBy = {};
  for (const c of plugins.configured) {
    (usedBy[c.name] = usedBy[c.name] || []).push(c.route === null ? "every route" : c.route);
  }
  fill("plugins", plugins.installed.map((p) => row([p.name, p.distribution || "–", p.version || "–",
    num(p.priority), (usedBy[p.name] || ["not configured"]).join(", ")])), "no plugins installed");
}

function renderStats(stats) {
  fill("traffic", stats.routes.map((r) => {
    const tr = row([r.route === null ? "(no route matched)" : r.route, num(r.requests_per_s, 1),
      num(r.errors_per_s, 1), num(r.p50_ms), num(r.p99_ms), num(r.requests), num(r.errors)]);
    tr.dataset.route = r.route === null ? "" : r.route;
    if (r.errors_per_s > 0) tr.className = "has-errors";
    return tr;
  }), "no routes");
  const w = stats.workers;
  $("traffic-note").textContent = "rates and latency over the last " + stats.window_seconds + " s" +
    (w.configured > 1 || w.reporting.length > 1
      ? " · " + w.reporting.length + " of " + Math.max(w.configured, w.reporting.length) + " workers reporting" : "");
  const rows = [];
  for (const up of stats.upstreams) {
    for (const t of up.targets) {
      let health = t.healthy ? "healthy" : "unhealthy";
      if (t.workers && t.workers.some((v) => v.healthy !== t.healthy)) {
        health += " (" + t.workers.filter((v) => v.healthy).length + "/" + t.workers.length + " workers healthy)";
      }
      const tr = row([up.name, t.url, el("td", health, t.healthy ? "ok" : "bad"),
        el("td", t.circuit, t.circuit === "closed" ? "" : "bad"), num(t.active_requests), num(t.open_connections)]);
      tr.dataset.target = t.url;
      rows.push(tr);
    }
  }
  fill("upstreams", rows, "no upstreams");
}

// ------------------------------------------------------------------ refresh loop and login

async function refresh() {
  const mine = session;
  try {
    const [status, stats] = await Promise.all([api("/status"), api("/stats")]);
    if (mine !== session) return;
    if (status.config_version !== configVersion) {
      const [routes, plugins] = await Promise.all([api("/routes"), api("/plugins")]);
      if (mine !== session) return;
      renderRoutes(routes);
      renderPlugins(plugins);
      configVersion = status.config_version;
    }
    renderStatus(status);
    renderStats(stats);
    $("banner").hidden = true;
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (err) {
    if (mine !== session) return;
    if (err instanceof AuthError) {
      logout("The admin token is no longer accepted: enter it again.");
      return;
    }
    $("banner").textContent = "Cannot reach the admin API (" + err.message + "); retrying.";
    $("banner").hidden = false;
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

function showDashboard() {
  $("login").hidden = true;
  $("dashboard").hidden = false;
  $("logout").hidden = false;
  configVersion = null;
  refresh();
}

function logout(message) {
  session += 1;
  clearTimeout(timer);
  sessionStorage.removeItem(TOKEN_KEY);
  for (const id of ["routes", "traffic", "upstreams", "plugins"]) {
    $(id).querySelector("tbody").replaceChildren();
  }
  $("reload").replaceChildren();
  $("summary").textContent = "";
  $("updated").textContent = "";
  $("dashboard").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("login-error").hidden = !message;
  $("token").value = "";
  $("token").focus();
}

async function login(event) {
  event.preventDefault();
  const value = $("token").value.trim();
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  try {
    await api("/status");
  } catch (err) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("login-error").textContent = err instanceof AuthError
      ? "Wrong token: the admin API refused it (401)."
      : "Cannot reach the admin API: " + err.message;
    $("login-error").hidden = false;
    return;
  }
  $("login-error").hidden = true;
  showDashboard();
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => logout(""));
  if (token()) {
    showDashboard();
  } else {
    logout("");
  }
});
