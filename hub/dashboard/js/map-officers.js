// Officers on the map, for dispatching: each officer's latest fix as a marker coloured AND
// labelled by availability (available, busy, offline, off duty), with an arrow for the heading
// when the glasses report one. The list comes from GET /officers (availability is the hub's
// word: it knows who is on duty, bound to glasses and busy with an incident); the marker moves
// with the live `positions` layer and the list is asked again after each `dispatch` event.
import * as L from "/ui/node_modules/leaflet/dist/leaflet-src.esm.js";
import { api } from "./api.js";
import { t, formatTime } from "./i18n.js";
import { h } from "./dom.js";
import { onLiveEvent } from "./live.js";
import { AVAILABILITY } from "./dispatch.js";

const REFRESH_MS = 30000; // the hub marks an officer offline when their glasses go quiet
const DISPATCH_REFRESH_MS = 500;

const known = (v) => (AVAILABILITY.includes(v) ? v : "unknown");

export class OfficersLayer {
  constructor(dash) {
    this.dash = dash;
    this.group = L.layerGroup();
    this.markers = new Map(); // username -> {marker, officer}
    this.timer = null;
    this.shown = false; // officers on the map (and so their legend row)
    onLiveEvent("positions", (ev) => this.onPosition(ev));
    setInterval(() => this.refresh(), REFRESH_MS);
  }

  addTo(map) {
    this.group.addTo(map);
    return this;
  }

  async refresh() {
    const site = this.dash.config.site ? `?${new URLSearchParams({ site: this.dash.config.site })}` : "";
    let officers;
    try {
      officers = await api(`/api/v1/officers${site}`);
    } catch (err) {
      console.warn("officers:", err);
      return;
    }
    this.set(officers);
  }

  set(officers) {
    const seen = new Set();
    for (const o of officers) {
      if (!o.last_fix) continue;
      seen.add(o.username);
      this.place(o);
    }
    for (const [name, entry] of this.markers) {
      if (!seen.has(name)) {
        this.group.removeLayer(entry.marker);
        this.markers.delete(name);
      }
    }
    // The legend explains the colours only while there are officers to explain.
    const any = this.markers.size > 0;
    if (any !== this.shown) {
      this.shown = any;
      this.dash.buildLegend();
    }
  }

  place(o) {
    const at = this.dash.toDisplay(o.last_fix.lon, o.last_fix.lat);
    let entry = this.markers.get(o.username);
    if (!entry) {
      const marker = L.marker(at, { keyboard: false, riseOnHover: true });
      entry = { marker, officer: o };
      this.markers.set(o.username, entry);
      marker.addTo(this.group);
    }
    entry.officer = o;
    entry.marker.setLatLng(at);
    entry.marker.setIcon(this.icon(o));
    const label = this.label(o);
    if (entry.marker.getTooltip()) entry.marker.setTooltipContent(label);
    else entry.marker.bindTooltip(label, { permanent: true, direction: "right", offset: [12, 0], className: "off-tooltip" });
  }

  icon(o) {
    const a = known(o.availability);
    const heading = o.last_fix?.heading_deg;
    const arrow = heading === null || heading === undefined ? null
      : h("span", { class: "off-heading", "data-heading": heading, style: { transform: `rotate(${heading}deg)` } });
    return L.divIcon({
      className: `off-marker off-${a}`,
      html: h("span", { class: "off-dot", "data-officer": o.username, "data-availability": a }, arrow),
      iconSize: [18, 18],
    });
  }

  label(o) {
    const a = known(o.availability);
    return h("span", { class: "off-label", "data-officer": o.username },
      h("strong", null, o.display_name || o.username), " ",
      h("span", { class: `avail avail-${a}` }, a === "unknown" ? String(o.availability) : t(`dispatchui.availability.${a}`)),
      o.last_fix?.ts ? h("span", { class: "off-time" }, ` ${formatTime(o.last_fix.ts)}`) : null);
  }

  // A live fix of a known officer moves their marker; an unknown one waits for the next list.
  onPosition(ev) {
    if (ev.entity_kind !== "officer") return;
    const entry = this.markers.get(ev.entity);
    if (!entry) return;
    const last = entry.officer.last_fix;
    if (last?.ts && Date.parse(ev.ts) < Date.parse(last.ts)) return; // late: never move back
    this.place({ ...entry.officer, last_fix: { lon: ev.lon, lat: ev.lat, heading_deg: ev.heading_deg ?? null, ts: ev.ts } });
  }

  // Availability follows dispatches (busy with an incident, free again): ask the hub.
  onDispatch() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), DISPATCH_REFRESH_MS);
  }

  relabel() {
    for (const { officer } of this.markers.values()) this.place(officer);
  }
}
