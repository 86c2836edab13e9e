// The command dashboard: boot, login, the map and its layers, live updates, panels.
import * as L from "/ui/node_modules/leaflet/dist/leaflet-src.esm.js";
import { api, ApiError, fetchAll } from "./api.js";
import { displayProjector } from "./datum.js";
import { t, setLanguage, preferredLanguage, onLanguage, translateDom, formatTime, setTimeZone, zoneLabel } from "./i18n.js";
import { escapeHtml, fill, h } from "./dom.js";
import { AlertsLayer, CellsLayer, DevicesLayer, OutlineLayer, PoisLayer, severityBadge } from "./layers.js";
import { LiveStream, dispatchLive } from "./live.js";
import { Activity } from "./activity.js";
import { applyWarningEvent } from "./warnings.js";
import { PositionsLayer, ENTITY_STYLE } from "./positions-layer.js";
import { Panels } from "./panels.js";
import { OrgPanel } from "./org.js";
import { IncidentWorkspace } from "./incidents.js";
import { CameraZonesLayer, CAMERA_ZONE_STYLE, ZonesLayer, ZONE_STYLE } from "./map-zones.js";
import { DeviceSummary } from "./map-devices.js";
import { Feed } from "./feed.js";
import { OfficersLayer } from "./map-officers.js";
import { AVAILABILITY } from "./dispatch.js";

const $ = (sel) => document.querySelector(sel);

const LAYERS = [
  { id: "cells", perm: "cells:read" },
  { id: "devices", perm: "devices:read" },
  { id: "officers", perm: "positions:read", kind: "officer" },
  { id: "wearers", perm: "positions:read", kind: "wearer" },
  { id: "tracks", perm: "positions:read", kind: "track" },
  { id: "trails", perm: "positions:read" },
  { id: "alerts", perm: "alerts:read" },
  { id: "pois", perm: "zones:read" },
  { id: "zones", perm: "zones:read", label: "map.layers.zones" },
  { id: "camera_zones", perm: "zones:read", label: "map.layers.camera_zones" },
];

// Leaflet's scale bar with its units from the catalogue ("100 m", "100 米").
const LocalScale = L.Control.Scale.extend({
  _updateMetric(maxMeters) {
    const meters = this._getRoundNum(maxMeters);
    const label = meters < 1000 ? t("map.scale.m", { n: meters }) : t("map.scale.km", { n: meters / 1000 });
    this._updateScale(this._mScale, label, meters / maxMeters);
  },
});

class Dashboard {
  constructor(me, config) {
    this.me = me;
    this.config = config;
    this.perms = new Set(me.permissions);
    this.toDisplay = displayProjector(config.tile_datum);
    this.alerts = new Map(); // id -> alert (newest first by id)
    this.timers = [];
  }

  can(p) {
    return this.perms.has(p);
  }

  // Open one incident in the workspace (the feed, the wall and search link here).
  openIncident(id) {
    return this.incidents.openIncident(id);
  }

  async start() {
    this.initMap();
    this.panels = new Panels(this);
    this.feed = new Feed(this);
    this.org = new OrgPanel(this);
    if (this.can("org:read")) this.org.loadLines().catch((err) => console.error("lines:", err));
    const orgButton = $("#org-open");
    orgButton.hidden = !this.can("org:write");
    orgButton.addEventListener("click", () => this.org.open());
    this.incidents = new IncidentWorkspace(this);
    const incidentsButton = $("#incidents-open");
    incidentsButton.hidden = !this.can("incidents:read");
    incidentsButton.addEventListener("click", () => this.incidents.open());
    $("#wall-open").hidden = !this.can("incidents:stats"); // the wall's figures need it
    $("#watchlists-open").hidden = !this.can("watchlist:read");
    $("#review-open").hidden = !this.can("matches:read");
    this.buildToggles();
    this.buildLegend();
    await this.loadInitial();
    await this.feed.start();
    this.feedStarted = true;
    this.startLive();
    this.panels.bindSearch();
    this.bindKeys();
    this.tickClock();
    this.timers.push(setInterval(() => this.tickClock(), 1000));
    if (this.can("devices:read")) this.timers.push(setInterval(() => this.refreshDevices(), 30000));
    onLanguage(() => this.relabel());
    // Loaded: assistive technology may read the page now (and anyone waiting for it knows).
    $("#app-view").setAttribute("aria-busy", "false");
    publishDiagnostics(this);
  }

  initMap() {
    const c = this.config;
    const map = L.map("map", {
      center: this.toDisplay(c.center[0], c.center[1]),
      zoom: c.zoom,
      minZoom: c.min_zoom,
      maxZoom: c.max_zoom,
      zoomControl: true,
      keyboard: true,
      attributionControl: true,
      preferCanvas: true,
      zoomSnap: 0.25,
    });
    map.attributionControl.setPrefix("");
    this.scale = new LocalScale({ position: "bottomright", metric: true, imperial: false, maxWidth: 160 }).addTo(map);
    this.map = map;
    this.bindViewToUrl();
    this.relabelZoom();
    map.on("popupopen", (ev) => {
      const close = ev.popup.getElement()?.querySelector(".leaflet-popup-close-button");
      if (close) close.setAttribute("aria-label", t("detail.close"));
    });
    // Cell names sit above the cell fills but below every marker, so they never hide one.
    map.createPane("gwCellLabels").style.zIndex = 450;
    const legend = L.control({ position: "bottomleft" });
    legend.onAdd = () => {
      const div = L.DomUtil.create("div", "legend map-legend");
      div.id = "legend";
      return div;
    };
    legend.addTo(map);
    const base = c.base_layer;
    if (base.kind === "url" || base.kind === "local_tiles") {
      L.tileLayer(base.url, {
        attribution: escapeHtml(base.attribution), // Leaflet renders attribution as HTML
        subdomains: base.subdomains || "abc",
        maxZoom: c.max_zoom,
        minZoom: c.min_zoom,
      }).addTo(map);
    } else {
      document.getElementById("map").classList.add("no-tiles");
    }
    this.map = map;
    this.outline = new OutlineLayer(this.toDisplay);
    this.outline.group.addTo(map);
    this.cells = new CellsLayer(this.toDisplay, (f, ev) => {
      if (ev && this.positions?.nearest(ev.containerPoint)) return; // the entity wins the click
      this.panels.showCell(f);
    });
    this.devices = new DevicesLayer(this.toDisplay, (id) => this.panels.showDevice(id));
    this.devices.attach(map);
    // On the map (top right), not in the side column: that keeps its room for the detail.
    const summary = L.control({ position: "topright" });
    summary.onAdd = () => {
      const el = L.DomUtil.create("details", "device-summary map-control");
      el.id = "device-summary";
      L.DomEvent.disableClickPropagation(el);
      L.DomEvent.disableScrollPropagation(el);
      return el;
    };
    if (this.can("devices:read")) summary.addTo(map);
    this.deviceSummary = new DeviceSummary(summary.getContainer() || document.createElement("details"));
    this.devices.onChange = () => this.deviceSummary.set([...this.devices.devices.values()].map((e) => e.feature));
    this.zones = new ZonesLayer(this.toDisplay);
    this.cameraZones = new CameraZonesLayer(this.toDisplay);
    this.cameraZones.attach(map);
    this.alertMarkers = new AlertsLayer(this.toDisplay, (id) => this.panels.showAlert(id));
    this.pois = new PoisLayer(this.toDisplay);
    this.positions = new PositionsLayer({
      toDisplay: this.toDisplay,
      trailPoints: c.trail_points,
      trailMaxAgeS: c.trail_max_age_s,
      staleAfterS: c.position_stale_after_s,
      trackFadeAfterS: c.track_fade_after_s,
      trackRemoveAfterS: c.track_remove_after_s,
      onSelect: (e) => this.panels.showEntity(e.id),
    });
    this.playback = L.layerGroup().addTo(map);
    this.layerObjects = {
      cells: this.cells.group,
      devices: this.devices.group,
      alerts: this.alertMarkers.group,
      pois: this.pois.group,
      zones: this.zones.group,
      camera_zones: this.cameraZones.group,
    };
    for (const def of LAYERS) {
      if (!this.can(def.perm)) continue;
      if (this.layerObjects[def.id]) this.layerObjects[def.id].addTo(map);
    }
    if (this.can("positions:read")) this.positions.addTo(map);
    if (this.can("dispatch:read")) this.officers = new OfficersLayer(this).addTo(map);
  }

  // The view lives in the address (#map=zoom/lat/lon, as on openstreetmap.org): a link or a
  // bookmark opens the same view, a reload keeps it, and a wall display can be pointed at a
  // fixed view. Coordinates are the map's own (the tile datum).
  bindViewToUrl() {
    this.urlView = viewFromHash(location.hash); // a view in the address wins over the fit
    const apply = () => {
      const view = viewFromHash(location.hash);
      if (view) this.map.setView([view.lat, view.lon], view.zoom, { animate: false });
    };
    apply();
    const write = () => {
      const c = this.map.getCenter();
      const zoom = Math.round(this.map.getZoom() * 100) / 100;
      history.replaceState(null, "", `#map=${zoom}/${c.lat.toFixed(6)}/${c.lng.toFixed(6)}`);
    };
    this.map.on("moveend", write);
    write();
    window.addEventListener("hashchange", apply);
  }

  buildToggles() {
    const box = $("#layer-toggles");
    const previous = new Map([...box.querySelectorAll("input")].map((i) => [i.id, i.checked]));
    const labels = [];
    for (const def of LAYERS) {
      if (!this.can(def.perm)) continue; // never offer a layer the API would refuse
      const input = h("input", { type: "checkbox", id: `layer-${def.id}` });
      input.checked = previous.get(input.id) ?? true;
      input.addEventListener("change", (ev) => this.setLayer(def, ev.target.checked));
      labels.push(h("label", { class: `toggle toggle-${def.id}` },
        input, " ", h("span", { class: `swatch swatch-${def.id}`, "aria-hidden": "true" }), " ",
        h("span", { "data-i18n": def.label || `layers.${def.id}` }, t(def.label || `layers.${def.id}`))));
    }
    fill(box, labels);
    $("#poi-import").hidden = !this.can("zones:write");
  }

  setLayer(def, on) {
    if (def.kind) {
      this.positions.setKindVisible(def.kind, on);
      if (def.id === "officers" && this.officers) {
        if (on) this.officers.addTo(this.map);
        else this.map.removeLayer(this.officers.group);
      }
    } else if (def.id === "trails") {
      this.positions.trailPoints = on ? this.config.trail_points : 0;
      if (!on) for (const e of this.positions.entities.values()) e.trail.length = 0;
      this.positions.requestDraw();
    } else {
      const layer = this.layerObjects[def.id];
      if (on) layer.addTo(this.map);
      else this.map.removeLayer(layer);
    }
  }

  buildLegend() {
    const spaced = (nodes) => nodes.flatMap((n, i) => (i ? [" ", n] : [n]));
    const row = (...children) => h("div", { class: "legend-row" }, children);
    const rows = [];
    if (this.can("alerts:read")) {
      rows.push(row(h("span", { "data-i18n": "legend.severity" }, t("legend.severity")), " ",
        spaced(["critical", "high", "medium", "low", "info"].map(severityBadge))));
    }
    if (this.can("cells:read")) {
      rows.push(row(h("span", { "data-i18n": "legend.warning" }, t("legend.warning")), " ",
        spaced(["red", "orange", "yellow"].map((w) => h("span", { class: `warn warn-${w}` }, t(`warning.${w}`))))));
    }
    if (this.can("positions:read")) {
      rows.push(row(spaced(Object.entries(ENTITY_STYLE).map(([k, s]) => h("span", { class: "ent" },
        h("i", { class: `shape-${s.shape}`, style: { background: s.fill } }), t(`entity.${k}`))))));
    }
    // Only once officers are on the map: the legend must not grow over it for nothing.
    if (this.officers?.markers.size) {
      rows.push(row(h("span", { "data-i18n": "dispatchui.legend" }, t("dispatchui.legend")), " ",
        spaced(AVAILABILITY.map((a) => h("span", { class: "ent" },
          h("i", { class: `off-swatch off-${a}`, "aria-hidden": "true" }), t(`dispatchui.availability.${a}`))))));
    }
    if (this.can("devices:read")) {
      rows.push(row(spaced(["online", "degraded", "offline"].map((s) => h("span", { class: "ent" },
        h("i", { class: `dev-dot dev-${s}` }), t(`status.${s}`))))));
    }
    if (this.can("zones:read")) {
      // Each kind's colour with its dash pattern and its name: never colour alone. Only the
      // kinds the site has: the legend must not grow over the map for kinds nobody uses.
      const swatch = (s) => h("i", {
        class: `zone-swatch ${s.dash ? (s.dash.startsWith("2") ? "dash-dot" : "dash-long") : ""}`,
        style: { "border-top-color": s.color }, "aria-hidden": "true",
      });
      const present = (features, key, table) => Object.entries(table)
        .filter(([k]) => features.some((f) => f.properties?.[key] === k));
      const zoneKinds = present(this.zones?.features || [], "kind", ZONE_STYLE);
      const cameraKinds = present(this.cameraZones?.features || [], "type", CAMERA_ZONE_STYLE);
      if (zoneKinds.length) {
        rows.push(row(h("span", { "data-i18n": "map.legend.zones" }, t("map.legend.zones")), " ",
          spaced(zoneKinds.map(([k, s]) => h("span", { class: "ent zone-key" }, swatch(s), t(`map.zone.${k}`))))));
      }
      if (cameraKinds.length) {
        rows.push(row(h("span", { "data-i18n": "map.legend.camera_zones" }, t("map.legend.camera_zones")), " ",
          spaced(cameraKinds.map(([k, s]) => h("span", { class: "ent zone-key" }, swatch(s), t(`map.camera_zone.${k}`))))));
      }
    }
    fill($("#legend"), rows);
  }

  async loadInitial() {
    const jobs = [];
    const site = this.config.site ? { site: this.config.site } : {};
    if (this.config.has_outline) jobs.push(api("/api/v1/ui/outline").then((fc) => this.outline.set(fc.features)));
    if (this.can("cells:read")) jobs.push(fetchAll("/api/v1/grid-cells", site).then((f) => this.cells.set(f)));
    if (this.can("devices:read")) jobs.push(this.refreshDevices());
    if (this.can("zones:read")) jobs.push(fetchAll("/api/v1/poi", site).then((f) => this.pois.set(f)));
    if (this.can("zones:read")) {
      jobs.push(fetchAll("/api/v1/zones", site).then((f) => {
        this.zones.set(f);
        this.buildLegend();
      }));
      jobs.push(api(`/api/v1/ui/camera-zones?${new URLSearchParams(site)}`).then((fc) => {
        this.cameraZones.set(fc);
        this.buildLegend();
      }));
    }
    if (this.can("positions:read")) {
      const since = new Date(Date.now() - this.config.position_stale_after_s * 4000).toISOString();
      jobs.push(
        fetchAll("/api/v1/positions/latest", { ...site, since }).then((items) => {
          for (const p of items) this.positions.update(p);
        }),
      );
    }
    if (this.can("alerts:read")) jobs.push(this.reloadAlerts());
    if (this.officers) jobs.push(this.officers.refresh());
    const results = await Promise.allSettled(jobs);
    for (const r of results) if (r.status === "rejected") console.error("initial load:", r.reason);
    if (!this.fitted) await this.fitToContent();
    if (this.feedStarted) await this.feed.reload(); // a resync after a gap in the stream
  }

  // Start on the whole district: the union of cells, outline, devices and points of interest,
  // fitted once the page has been laid out (the map's size is only final after the login view
  // is gone and the side panel has rendered), with the legend's height kept clear at the bottom.
  contentBounds() {
    const bounds = L.latLngBounds([]);
    for (const { layer } of this.cells.cells.values()) bounds.extend(layer.getBounds());
    this.outline.group.eachLayer((l) => bounds.extend(l.getBounds ? l.getBounds() : l.getLatLng()));
    for (const { marker } of this.devices.devices.values()) if (marker) bounds.extend(marker.getLatLng());
    this.pois.group.eachLayer((m) => bounds.extend(m.getLatLng()));
    this.zones.group.eachLayer((l) => bounds.extend(l.getBounds()));
    return bounds;
  }

  async fitToContent() {
    this.fitted = true;
    await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    this.map.invalidateSize({ pan: false });
    if (this.urlView) {
      const { lat, lon, zoom } = this.urlView;
      this.map.setView([lat, lon], zoom, { animate: false });
      return;
    }
    const bounds = this.contentBounds();
    if (!bounds.isValid()) return;
    const legend = document.getElementById("legend");
    const pad = 28;
    // The device summary sits top right: the top is kept clear of it as the bottom of the legend.
    const summary = document.getElementById("device-summary");
    this.map.fitBounds(bounds, {
      paddingTopLeft: [pad, pad + (summary ? summary.offsetHeight : 0)],
      paddingBottomRight: [pad, pad + (legend ? legend.offsetHeight : 0)],
      maxZoom: Math.min(this.config.max_zoom, 19),
      animate: false,
    });
  }

  async refreshDevices() {
    const site = this.config.site ? { site: this.config.site } : {};
    this.devices.set(await fetchAll("/api/v1/ui/devices", site));
  }

  // The map's alert markers: the newest alerts (the feed keeps its own lists, js/feed.js).
  async reloadAlerts() {
    const site = this.config.site ? { site: this.config.site } : {};
    const q = new URLSearchParams({ ...site, limit: String(this.config.alert_feed_max) });
    const page = await api(`/api/v1/alerts?${q}`);
    this.alerts.clear();
    for (const a of page.items.reverse()) this.upsertMarker(a);
  }

  upsertMarker(a) {
    const known = this.alerts.get(a.id);
    const merged = { status: "new", ...known, ...a };
    this.alerts.set(a.id, merged);
    while (this.alerts.size > this.config.alert_feed_max) {
      const oldest = [...this.alerts.keys()].sort()[0];
      this.alerts.delete(oldest);
      this.alertMarkers.remove(oldest);
    }
    this.alertMarkers.upsert(merged);
    return merged;
  }

  // A new or changed alert (live, or this page's own ack: opts.own) for the map and the feed.
  addAlert(a, opts = {}) {
    const merged = this.upsertMarker(a);
    this.feed.onAlert(merged, opts);
  }

  startLive() {
    if (!this.can("live:read")) {
      this.setConn("polling");
      if (this.can("alerts:read")) {
        this.timers.push(setInterval(() => this.reloadAlerts().then(() => this.feed.reload()), 15000));
      }
      return;
    }
    const layers = [];
    if (this.can("positions:read")) layers.push("positions");
    if (this.can("alerts:read")) layers.push("alerts");
    if (this.can("devices:read")) layers.push("devices");
    if (this.can("cells:read")) layers.push("warnings");
    if (this.can("incidents:read")) layers.push("incidents");
    if (this.can("dispatch:read")) layers.push("dispatch");
    this.activity = new Activity($("#live-activity"), this.me.username);
    this.live = new LiveStream({
      layers,
      onEvent: (ev) => this.onEvent(ev),
      onState: (state, reason) => this.setConn(state, reason),
      onResync: () => this.loadInitial(),
    });
    this.live.start();
  }

  onEvent(ev) {
    if (this.config.site && ev.site && ev.site !== this.config.site) return;
    if (ev.layer === "positions") this.positions.update(ev);
    else if (ev.layer === "alerts" && ev.change) this.applyAlertChange(ev);
    else if (ev.layer === "alerts") this.addAlert(ev);
    else if (ev.layer === "devices" && !this.devices.applyState(ev)) this.refreshDevices();
    else if (ev.layer === "warnings") applyWarningEvent(this, ev);
    else if (ev.layer === "incidents") {
      this.feed.onIncident(ev);
      this.incidents.onLive(ev);
    } else if (ev.layer === "dispatch") {
      this.incidents.dispatch.onLive(ev);
      this.feed.onDispatch(ev);
      this.officers?.onDispatch(ev);
    }
    dispatchLive(ev);
  }

  // Another operator (on this hub or another replica) acknowledged or annotated an alert.
  applyAlertChange(ev) {
    const known = this.alerts.get(ev.id);
    const { status, acknowledged_by, acknowledged_at } = ev;
    if (known) {
      this.alerts.set(ev.id, { ...known, status, acknowledged_by, acknowledged_at });
      this.alertMarkers.upsert(this.alerts.get(ev.id));
    }
    // The feed holds its own rows (some the map's newest-alerts list does not).
    this.feed.onAlertChange({ id: ev.id, status, acknowledged_by, acknowledged_at });
    const open = this.panels.current;
    if (open?.type === "alert" && open.id === ev.id) this.panels.refreshAlert(ev.id);
    this.activity.alert(ev);
  }

  setConn(state, reason) {
    const el = $("#conn");
    el.dataset.state = state;
    el.textContent = t(`conn.${state}`);
    el.title = reason || "";
  }

  tickClock() {
    const now = new Date();
    $("#clock").textContent = formatTime(now.toISOString());
    $("#clock").dateTime = now.toISOString();
    const zone = zoneLabel(now);
    if ($("#site-zone").textContent !== zone) $("#site-zone").textContent = zone;
  }

  bindKeys() {
    document.addEventListener("keydown", (ev) => {
      const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName);
      if (ev.key === "/" && !typing) {
        ev.preventDefault();
        $("#search-input").focus();
      } else if (ev.key === "Escape") {
        this.panels.closeDetail();
      }
    });
  }

  relabelZoom() {
    const zc = this.map.zoomControl;
    for (const [el, key] of [[zc._zoomInButton, "map.zoom_in"], [zc._zoomOutButton, "map.zoom_out"]]) {
      el.title = t(key);
      el.setAttribute("aria-label", t(key));
    }
  }

  relabel() {
    this.relabelZoom();
    this.scale._update();
    this.buildToggles();
    this.buildLegend();
    this.cells.relabel();
    this.devices.relabel();
    this.pois.relabel();
    this.zones.relabel();
    this.cameraZones.relabel();
    this.officers?.relabel();
    this.deviceSummary.render();
    for (const a of this.alerts.values()) this.alertMarkers.upsert(a);
    this.panels.rerender();
    this.incidents.rerender();
    if (this.live) this.setConn($("#conn").dataset.state || "connecting");
    $("#who").textContent = `${this.me.display_name || this.me.username} · ${t(`role.${this.me.role}`)}`;
  }

  stop() {
    for (const id of this.timers) clearInterval(id);
    if (this.live) this.live.stop();
  }
}

// A read-only diagnostic for whoever looks after a wall display: in the browser's console,
// gridwardDiagnostics.render() tells whether the map keeps up (entities drawn, frames, draw
// time, delay from a device's timestamp to the frame that drew it). It returns copies and
// offers no way to change the page (docs/dashboard.md).
function publishDiagnostics(dash) {
  if (window.gridwardDiagnostics) return;
  const diagnostics = Object.freeze({
    render: () => (dash.positions ? dash.positions.diagnostics() : null),
    feed: () => (dash.feed ? dash.feed.diagnostics() : null),
  });
  Object.defineProperty(window, "gridwardDiagnostics", { value: diagnostics, enumerable: false });
}

function viewFromHash(hash) {
  const m = /^#map=(\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)$/.exec(hash);
  if (!m) return null;
  const [zoom, lat, lon] = m.slice(1).map(Number);
  if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
  return { zoom, lat, lon };
}

async function showLogin(message) {
  $("#app-view").hidden = true;
  $("#login-view").hidden = false;
  $("#login-error").textContent = message || "";
  $("#login-user").focus();
}

async function boot() {
  const langSelects = document.querySelectorAll(".lang-select");
  for (const sel of langSelects) sel.addEventListener("change", (ev) => setLanguage(ev.target.value));
  let me;
  try {
    me = await api("/api/v1/auth/me");
  } catch (err) {
    await setLanguage(preferredLanguage("en"));
    if (err instanceof ApiError && err.status === 401) return showLogin();
    return showLogin(t("login.hub_unreachable"));
  }
  const config = await api("/api/v1/ui/config");
  setTimeZone(config.timezone || "UTC");
  await setLanguage(preferredLanguage(config.language));
  $("#login-view").hidden = true;
  $("#app-view").hidden = false;
  $("#site-name").textContent = config.site || t("header.all_sites");
  $("#who").textContent = `${me.display_name || me.username} · ${t(`role.${me.role}`)}`;
  translateDom(document);
  const dash = new Dashboard(me, config);
  await dash.start();
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("#login-error").textContent = "";
  try {
    await api("/api/v1/auth/login", {
      method: "POST",
      body: { username: $("#login-user").value, password: $("#login-pass").value },
    });
  } catch (err) {
    const key = err.status === 429 ? "login.too_many" : err.status === 401 ? "login.wrong" : "login.hub_unreachable";
    $("#login-error").textContent = t(key);
    return;
  }
  $("#login-pass").value = "";
  await boot();
});

$("#logout").addEventListener("click", async () => {
  try {
    await api("/api/v1/auth/logout", { method: "POST" });
  } finally {
    location.reload();
  }
});

boot().catch((err) => {
  console.error(err);
  showLogin(String(err.message || err));
});


