// The dispatcher console. It talks to the gateway it is served by (docs/api.md):
// REST for actions, the /api/live WebSocket for the picture. Nothing here claims to be live
// when it is not: the connection pill turns red the moment the feed stops.

const STATUS = {
  1: "available", 2: "at station", 3: "en route", 4: "on scene",
  5: "talk request", 6: "out of service", 7: "busy", 8: "at destination",
};
const STATIONARY_MPS = 0.5;      // as protocol/predictor.py
const MAX_EXTRAPOLATION_S = 30;  // as protocol/predictor.py
const EARTH_RADIUS_M = 6371008.8;
const FEED_SILENCE_MS = 12000;   // the gateway pings every 5 s
const TRACK_MS = 30 * 60 * 1000;
const BOARD_ROWS = 300;

const units = new Map();      // id -> unit view from the gateway
const incidents = new Map();  // id -> incident
const markers = new Map();    // id -> Leaflet marker
let session = null;           // {user, role, csrf}
let config = null;
let map = null;
let trackLayer = null;
let incidentMarker = null;
let selected = null;
let socket = null;
let lastFrame = 0;
let clockSkew = 0;            // gateway time - our time, from each frame's t
let sortKey = "id";
let sortUp = true;
let placing = false;
let openIncident = null;
let audio = null;
const centredAlarms = new Set();
const dirty = new Set();      // units changed since the last render
const rows = new Map();       // id -> its <tr> on the board
let boardStale = true;        // the whole board must be rebuilt (order, filter, new units)
let renderQueued = false;
// Thousands of units: rebuild the board and glide the markers less often (docs/console.md).
const big = () => units.size > 1000;

const $ = (id) => document.getElementById(id);
const now = () => Date.now() + clockSkew;

// -- talking to the gateway ---------------------------------------------------

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session) headers["X-CSRF-Token"] = session.csrf;
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && path !== "/api/login") {
    showLogin("Your session has ended: log in again.");
    throw new Error("login required");
  }
  const data = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const detail = data && data.detail;
    const text = typeof detail === "string" ? detail
      : Array.isArray(detail) ? detail.map((d) => `${d.loc.slice(-1)[0]}: ${d.msg}`).join("; ")
      : `HTTP ${response.status}`;
    throw new Error(text);
  }
  return data;
}

function showLogin(message) {
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  if (socket) socket.close();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const who = await api("POST", "/api/login", {
      username: $("login-user").value, password: $("login-password").value,
    });
    $("login-password").value = "";
    unlockAudio();  // the login click lets the page play the SOS sound
    await start(who);
  } catch (error) {
    $("login-error").textContent = error.message;
  }
});

$("logout").addEventListener("click", async () => {
  try { await api("POST", "/api/logout"); } catch (_) { /* gone anyway */ }
  session = null;
  showLogin("Logged out.");
});

async function start(who) {
  session = who;
  $("login").hidden = true;
  $("who").textContent = `${who.user} (${who.role})`;
  document.body.classList.toggle("viewer", who.role === "viewer");
  config = await api("GET", "/api/config");
  if (!map) setUpMap();
  connect();
}

// -- the live feed --------------------------------------------------------------

function connect() {
  if (socket) socket.close();
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/live`;
  const ws = new WebSocket(url);
  socket = ws;
  ws.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    lastFrame = Date.now();
    clockSkew = frame.t - Date.now();
    if (frame.type === "snapshot") {
      units.clear();
      incidents.clear();
    }
    // snapshot, alarm (sent at once, ahead of queued deltas) and delta frames all carry unit
    // views; an alarm frame may overtake a delta rendered before it: keep the higher rev.
    for (const unit of frame.units || []) {
      const known = units.get(unit.id);
      if (known && known.rev > unit.rev) continue;
      units.set(unit.id, unit);
      dirty.add(unit.id);
    }
    for (const incident of frame.incidents || []) incidents.set(incident.id, incident);
    if (frame.type === "snapshot") { setLive(true); boardStale = true; }
    if (frame.type !== "ping") scheduleRender();
  };
  ws.onclose = () => {
    if (socket !== ws) return;
    setLive(false);
    if (session) setTimeout(() => { if (socket === ws && session) recheckSession(); }, 1500);
  };
}

async function recheckSession() {
  // The gateway may be down (retry) or may have forgotten us (log in again).
  try {
    const who = await api("GET", "/api/session");
    session = { ...session, ...who };
    connect();
  } catch (error) {
    if (session) setTimeout(recheckSession, 2000);
  }
}

function setLive(live) {
  const pill = $("connection");
  pill.textContent = live ? "live" : "disconnected — reconnecting";
  pill.className = `pill ${live ? "up" : "down"}`;
  document.body.classList.toggle("not-live", !live);
}

setInterval(() => {
  // A socket can stay "open" through a dead network: trust frames, not the socket.
  if (socket && session && lastFrame && Date.now() - lastFrame > FEED_SILENCE_MS) {
    lastFrame = 0;
    setLive(false);
    socket.close();
  }
}, 1000);

// -- the map --------------------------------------------------------------------

function setUpMap() {
  if (!window.L) {
    $("map-note").textContent = "Map library not installed: units are on the board.";
    return;
  }
  map = L.map("map", { zoomControl: true }).setView(config.center, config.zoom);
  if (config.tiles) {
    L.tileLayer(config.tiles.url, { attribution: config.tiles.attribution, maxZoom: 19 }).addTo(map);
  } else {
    $("map-note").textContent = "No tile server configured: markers on a blank map.";
  }
  map.on("click", (event) => {
    if (!placing) return;
    $("incident-lat").value = event.latlng.lat.toFixed(5);
    $("incident-lon").value = event.latlng.lng.toFixed(5);
    placeIncidentMarker(event.latlng.lat, event.latlng.lng);
  });
}

function travelled(speed, elapsed, accel) {
  // As protocol/predictor.py's travelled_m: constant speed, or a braking report to a stop.
  if (accel === null || accel === undefined || accel >= 0) return speed * elapsed;
  const braking = Math.min(elapsed, speed / -accel);
  return speed * braking + 0.5 * accel * braking * braking;
}

function predicted(unit) {
  // Where the command room draws the unit now: the shared predictor (protocol/predictor.py).
  const p = unit.position;
  if (!p) return null;
  const speed = p.speed_mps || 0;
  const heading = p.heading_deg;
  if (speed < STATIONARY_MPS || heading === null || heading === undefined) return [p.lat, p.lon];
  const elapsed = Math.min(Math.max((now() - p.t) / 1000, 0), MAX_EXTRAPOLATION_S);
  if (elapsed === 0) return [p.lat, p.lon];
  const distance = travelled(speed, elapsed, p.accel_mps2);
  const rad = (heading * Math.PI) / 180;
  const north = distance * Math.cos(rad);
  const east = distance * Math.sin(rad);
  const lat = p.lat + (north / EARTH_RADIUS_M) * (180 / Math.PI);
  // The mean latitude, as predictor.move: the same point to the centimetre.
  const cosLat = Math.max(Math.cos((((p.lat + lat) / 2) * Math.PI) / 180), 1e-6);
  const lon = p.lon + (east / (EARTH_RADIUS_M * cosLat)) * (180 / Math.PI);
  return [lat, lon];
}

function activeSos(unit) {
  return unit.sos && !unit.sos.cancelled ? unit.sos : null;
}

function markerHtml(unit) {
  const code = unit.status_code || "–";
  const classes = [
    "mk", `t-${unit.type}`, `s-${unit.status_code || "none"}`,
    unit.stale ? "stale" : "", unit.online ? "" : "offline",
    selected === unit.id ? "selected" : "", activeSos(unit) && !activeSos(unit).acknowledged_by ? "sos" : "",
  ].join(" ");
  return `<div class="${classes}" data-unit="${unit.id}">${activeSos(unit) ? "!" : code}` +
    `<span class="mk-label">${unit.id}</span></div>`;
}

function drawMarkers(ids) {
  if (!map) return;
  for (const unit of ids ? [...ids].map((id) => units.get(id)).filter(Boolean) : units.values()) {
    const where = predicted(unit);
    let marker = markers.get(unit.id);
    if (!where) {
      if (marker) { marker.remove(); markers.delete(unit.id); }
      continue;
    }
    const html = markerHtml(unit);
    if (!marker) {
      marker = L.marker(where, { icon: L.divIcon({ className: "unit-marker", html, iconSize: [34, 34] }) });
      marker.on("click", () => select(unit.id));
      marker.addTo(map);
      marker.html = html;
      markers.set(unit.id, marker);
    } else {
      marker.setLatLng(where);
      if (marker.html !== html) {
        marker.setIcon(L.divIcon({ className: "unit-marker", html, iconSize: [34, 34] }));
        marker.html = html;
      }
    }
  }
  if (ids) return;
  for (const [id, marker] of markers) {
    if (!units.has(id)) { marker.remove(); markers.delete(id); }
  }
}

let glides = 0;
setInterval(() => {  // markers glide between reports; four times a second, once with thousands
  glides += 1;
  if (session && (!big() || glides % 4 === 0)) drawMarkers();
}, 250);

// -- the board ------------------------------------------------------------------

function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

function clock(ms) {
  return ms ? new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
}

function statusChip(unit) {
  const code = unit.status_code;
  const name = code ? STATUS[code] || unit.status : "no status yet";
  return `<span class="chip s-${code || "none"}"><span class="code">${code || "–"}</span>${name}</span>`;
}

function sortValue(unit, key) {
  switch (key) {
    case "status": return unit.status_code || 99;
    case "since": return unit.status_since || 0;
    case "seen": return -(unit.last_seen || 0);
    case "speed": return unit.position ? unit.position.speed_mps || 0 : -1;
    case "battery": return unit.health ? unit.health.supply_v || 0 : -1;
    case "backlog": return unit.health ? unit.health.outbox_depth || 0 : -1;
    default: return unit.id;
  }
}

function rowHtml(u) {
  const tags = [
    u.online ? "" : `<span class="tag offline">offline</span>`,
    u.stale ? `<span class="tag stale">stale</span>` : "",
    u.assignment && u.assignment.state === "pending" ? `<span class="tag pending">assignment pending</span>` : "",
  ].join("");
  const speed = u.position && u.position.speed_mps != null ? Math.round(u.position.speed_mps * 3.6) : "";
  const supply = u.health && u.health.supply_v != null ? `${u.health.supply_v.toFixed(1)} V` : "";
  const backlog = u.health && u.health.outbox_depth != null ? u.health.outbox_depth : "";
  return `<td>${u.id}</td><td>${statusChip(u)}${tags}</td>` +
    `<td>${clock(u.status_since)}</td><td class="seen">${ago(u.last_seen)}</td><td>${speed}</td>` +
    `<td>${supply}</td><td>${backlog}</td>`;
}

function rowClass(u) {
  return [u.stale ? "stale" : "", u.online ? "" : "offline", activeSos(u) ? "sos" : "",
    selected === u.id ? "selected" : ""].join(" ");
}

function drawBoard(full) {
  const filter = $("filter").value;
  if (!full && !boardStale && big()) {
    // Thousands of units: only the rows shown of the units that changed, in place; the order,
    // the filter and units not shown wait for the next rebuild (every 5 s).
    for (const id of dirty) {
      const u = units.get(id), tr = rows.get(id);
      if (!u || !tr) continue;
      tr.innerHTML = rowHtml(u);
      tr.className = rowClass(u);
    }
    return;
  }
  boardStale = false;
  const matching = [...units.values()]
    .filter((u) => !filter || String(u.status_code) === filter)
    .sort((a, b) => {
      const x = sortValue(a, sortKey), y = sortValue(b, sortKey);
      return (x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : 1) * (sortUp ? 1 : -1);
    });
  // A dispatcher reads the top of the board; thousands of rows would only slow the page.
  const shown = matching.slice(0, BOARD_ROWS);
  $("board-more").textContent = matching.length > BOARD_ROWS
    ? `${BOARD_ROWS} of ${matching.length} shown: sort or filter to see others` : "";
  const body = $("board").querySelector("tbody");
  body.innerHTML = shown.map((u) => `<tr data-unit="${u.id}" class="${rowClass(u)}">${rowHtml(u)}</tr>`).join("");
  rows.clear();
  for (const tr of body.children) rows.set(tr.dataset.unit, tr);
  const online = [...units.values()].filter((u) => u.online && !u.stale).length;
  $("counts").textContent = `${units.size} units, ${online} live`;
}

$("board").querySelector("tbody").addEventListener("click", (event) => {
  const row = event.target.closest("tr[data-unit]");
  if (row) select(row.dataset.unit);
});

$("board").querySelector("thead").addEventListener("click", (event) => {
  const th = event.target.closest("th[data-key]");
  if (!th) return;
  sortUp = sortKey === th.dataset.key ? !sortUp : true;
  sortKey = th.dataset.key;
  for (const other of $("board").querySelectorAll("th")) other.className = "";
  th.className = `sorted ${sortUp ? "up" : ""}`;
  drawBoard(true);
});

$("filter").innerHTML += Object.entries(STATUS)
  .map(([code, name]) => `<option value="${code}">${code} ${name}</option>`).join("");
$("filter").addEventListener("change", () => drawBoard(true));

// "12 s ago" keeps counting, and the order follows the sort: a rebuild every second
// (every 5 s with thousands of units; changed rows are updated in between).
let rebuilds = 0;
setInterval(() => {
  rebuilds += 1;
  if (session && (!big() || rebuilds % 5 === 0)) drawBoard(true);
}, 1000);

// -- a unit's details and track -------------------------------------------------

async function select(unitId) {
  selected = unitId;
  boardStale = true;
  render();
  const unit = units.get(unitId);
  const where = unit && predicted(unit);
  if (map && where) map.panTo(where);
  if (!map) return;
  try {
    const track = await api("GET", `/api/units/${encodeURIComponent(unitId)}/track?since=${Date.now() + clockSkew - TRACK_MS}`);
    if (trackLayer) trackLayer.remove();
    trackLayer = L.geoJSON(track.features[0], { style: { color: "#0550ae", weight: 4, opacity: 0.7, className: "track" } }).addTo(map);
  } catch (_) { /* the details still show */ }
}

function drawDetails() {
  const unit = selected && units.get(selected);
  const box = $("details");
  box.hidden = !unit;
  if (!unit) return;
  const p = unit.position;
  const h = unit.health || {};
  box.innerHTML = `<h2>${unit.id} <small>${unit.type}</small></h2>
    <dl>
      <dt>Status</dt><dd>${statusChip(unit)} since ${clock(unit.status_since)}</dd>
      <dt>Presence</dt><dd>${unit.online ? "online" : "offline (last will)"}${unit.stale ? ", stale" : ""}</dd>
      <dt>Last seen</dt><dd>${ago(unit.last_seen)}</dd>
      <dt>Position</dt><dd>${p ? `${p.lat.toFixed(5)}, ${p.lon.toFixed(5)} (${ago(p.t)})` : "none yet"}</dd>
      <dt>Speed</dt><dd>${p && p.speed_mps != null ? `${Math.round(p.speed_mps * 3.6)} km/h` : ""}</dd>
      <dt>Incident</dt><dd>${unit.incident || ""}${unit.assignment ? ` (assignment ${unit.assignment.state})` : ""}</dd>
      <dt>Supply</dt><dd>${h.supply_v != null ? `${h.supply_v} V` : ""}</dd>
      <dt>Backlog</dt><dd>${h.outbox_depth != null ? h.outbox_depth : ""}</dd>
    </dl>
    <button type="button" id="details-close">Close</button>`;
  $("details-close").onclick = () => {
    selected = null;
    boardStale = true;
    if (trackLayer) trackLayer.remove();
    render();
  };
}

// -- SOS ------------------------------------------------------------------------

function drawAlarms() {
  const alarms = [...units.values()].filter(activeSos)
    .sort((a, b) => a.sos.raised - b.sos.raised);
  $("alarms").innerHTML = alarms.map((u) => {
    const s = u.sos;
    if (s.acknowledged_by) {
      return `<div class="alarm acknowledged" data-unit="${u.id}">SOS ${u.id} — acknowledged by ${s.acknowledged_by}</div>`;
    }
    const button = session && session.role !== "viewer"
      ? `<button data-ack="${u.id}" data-alarm="${s.alarm_id}">Acknowledge</button>` : "";
    return `<div class="alarm" data-unit="${u.id}" role="alert">SOS ${u.id} — raised ${ago(s.raised)} ${button}</div>`;
  }).join("");
  for (const unit of alarms) {
    const key = `${unit.id}/${unit.sos.alarm_id}`;
    if (!unit.sos.acknowledged_by && !centredAlarms.has(key)) {
      centredAlarms.add(key);
      const where = unit.sos.lat != null ? [unit.sos.lat, unit.sos.lon] : predicted(unit);
      if (map && where) map.setView(where, Math.max(map.getZoom(), 15));
      selected = unit.id;
    }
  }
}

$("alarms").addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-ack]");
  if (!button) return;
  button.disabled = true;
  try {
    const acked = await api("POST", `/api/units/${encodeURIComponent(button.dataset.ack)}/sos/${button.dataset.alarm}/ack`);
    const unit = units.get(acked.unit);
    if (unit) { unit.sos = { ...unit.sos, ...acked }; dirty.add(unit.id); render(); }
  } catch (error) {
    button.disabled = false;
    alert(`Acknowledgement failed: ${error.message}`);
  }
});

function unlockAudio() {
  if (!audio && (window.AudioContext || window.webkitAudioContext)) {
    audio = new (window.AudioContext || window.webkitAudioContext)();
  }
  if (audio && audio.state === "suspended") audio.resume();
}

function beep() {
  if (!audio) return;
  const osc = audio.createOscillator();
  const gain = audio.createGain();
  osc.type = "square";
  osc.frequency.value = 880;
  gain.gain.value = 0.15;
  osc.connect(gain).connect(audio.destination);
  osc.start();
  osc.stop(audio.currentTime + 0.35);
}

let sounding = 0;
setInterval(() => {
  // The sound repeats until every SOS has been acknowledged by a dispatcher.
  const open = [...units.values()].some((u) => activeSos(u) && !u.sos.acknowledged_by);
  document.body.dataset.sosSounding = open ? "yes" : "no";
  if (open) { sounding += 1; beep(); }
}, 1500);

// -- incidents --------------------------------------------------------------------

$("new-incident").addEventListener("click", () => {
  placing = true;
  openIncident = null;
  $("incident-panel").hidden = false;
  $("incident-form").hidden = false;
  $("incident-view").hidden = true;
  $("incident-error").textContent = "";
});

$("incident-cancel").addEventListener("click", closeIncident);
$("incident-close").addEventListener("click", closeIncident);

function closeIncident() {
  placing = false;
  openIncident = null;
  $("incident-panel").hidden = true;
  if (incidentMarker) { incidentMarker.remove(); incidentMarker = null; }
}

function placeIncidentMarker(lat, lon) {
  if (!map) return;
  if (incidentMarker) incidentMarker.remove();
  incidentMarker = L.marker([lat, lon], {
    icon: L.divIcon({ className: "incident-marker", html: "✚", iconSize: [30, 30] }),
  }).addTo(map);
}

$("incident-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const lat = Number($("incident-lat").value), lon = Number($("incident-lon").value);
  try {
    const incident = await api("POST", "/api/incidents", { lat, lon, title: $("incident-title").value });
    incidents.set(incident.id, incident);
    placing = false;
    placeIncidentMarker(lat, lon);
    openIncident = incident.id;
    $("incident-form").hidden = true;
    $("incident-view").hidden = false;
    await drawRanking();
  } catch (error) {
    $("incident-error").textContent = error.message;
  }
});

async function drawRanking() {
  if (openIncident === null) return;
  const incident = incidents.get(openIncident);
  $("incident-summary").textContent = `#${incident.id} ${incident.title} — ${incident.lat.toFixed(5)}, ${incident.lon.toFixed(5)}`;
  const ranking = await api("GET", `/api/incidents/${incident.id}/nearest?limit=8`);
  $("ranking").querySelector("tbody").innerHTML = ranking.length ? ranking.map((r) =>
    `<tr data-unit="${r.unit}"><td>${r.unit} <small>${r.type}</small></td><td>${(r.distance_m / 1000).toFixed(1)} km</td>` +
    `<td>${Math.ceil(r.eta_s / 60)} min</td><td><button class="dispatch-only" data-assign="${r.unit}">Assign</button></td></tr>`
  ).join("") : `<tr><td colspan="4">No available unit.</td></tr>`;
}

$("ranking").addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-assign]");
  if (!button || openIncident === null) return;
  button.disabled = true;
  try {
    const assignment = await api("POST", `/api/incidents/${openIncident}/assign`, { unit: button.dataset.assign });
    const unit = units.get(button.dataset.assign);
    if (unit) { unit.assignment = assignment; dirty.add(unit.id); render(); }
    button.textContent = "Assigned";
  } catch (error) {
    button.disabled = false;
    $("incident-error").textContent = error.message;
  }
});

// -- everything -------------------------------------------------------------------

function render() {
  drawAlarms();
  drawBoard(false);
  drawDetails();
  drawMarkers(dirty);  // the others glide on their own timer
  dirty.clear();
}

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; render(); });
}

// A page reloaded with a live session carries on without a new login.
api("GET", "/api/session").then(start).catch(() => showLogin(""));
