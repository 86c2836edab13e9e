// Map layers other than live positions: grid cells, devices, alerts, points of interest,
// and the operator's outline. Colours are from the Okabe-Ito colour-blind-safe palette and
// every colour is paired with a text label or a shape.
import * as L from "/ui/node_modules/leaflet/dist/leaflet-src.esm.js";
import { h } from "./dom.js";
import { t, formatAgo } from "./i18n.js";
import { MarkerSpreader } from "./map-spread.js";
import { alertTitle } from "./alert-text.js";

export const SEVERITY = {
  critical: { color: "#D55E00", ink: "#111111", rank: 4 }, // dark ink: white on it is 3.9:1
  high: { color: "#E69F00", ink: "#111111", rank: 3 },
  medium: { color: "#F0E442", ink: "#111111", rank: 2 },
  low: { color: "#0072B2", ink: "#ffffff", rank: 1 },
  info: { color: "#9AA5B1", ink: "#111111", rank: 0 },
};
// Warning colours on the dark map: yellow is by nature the most luminous, so red is made the
// most visible by everything else: the widest outline, a white casing under it, the densest
// fill and a label chip in a dark red that white text reads on (6.5:1). Each outline has at
// least 3:1 contrast to the map background (WCAG 1.4.11) and every colour has a text label.
export const WARNING = {
  red: { color: "#FF3B30", weight: 5, casing: 8, fillOpacity: 0.34, chip: "#B3261E", ink: "#ffffff" },
  orange: { color: "#FF9F1A", weight: 3, casing: 0, fillOpacity: 0.2, chip: "#E69F00", ink: "#111111" },
  yellow: { color: "#F0E442", weight: 2, casing: 0, fillOpacity: 0.1, chip: "#F0E442", ink: "#111111" },
};
export const DEVICE_STATUS = {
  online: { color: "#009E73" },
  degraded: { color: "#E69F00" },
  offline: { color: "#6B7280" },
  unknown: { color: "#6B7280" },
};

// A status the styles know (a class name is never made from a value the hub did not define).
export function deviceStatus(status) {
  return Object.hasOwn(DEVICE_STATUS, status) || status === "stopped" ? status : "unknown";
}

// A severity as colour and text; an unknown value is shown as "info" (the class and colour
// come from the fixed table, never from the value).
export function severityBadge(sev) {
  const known = Object.hasOwn(SEVERITY, sev) ? sev : "info";
  const s = SEVERITY[known];
  return h("span", { class: `sev sev-${known}`, style: { background: s.color, color: s.ink } },
    t(`severity.${known}`));
}

// Coordinates in a GeoJSON geometry, mapped into Leaflet [lat, lng] in the tile datum.
function geoLatLngs(coords, depth, toDisplay) {
  if (depth === 0) return toDisplay(coords[0], coords[1]);
  return coords.map((c) => geoLatLngs(c, depth - 1, toDisplay));
}

export function polygonLayer(geometry, toDisplay, style) {
  if (geometry.type === "Polygon") return L.polygon(geoLatLngs(geometry.coordinates, 2, toDisplay), style);
  if (geometry.type === "MultiPolygon") {
    return L.polygon(geoLatLngs(geometry.coordinates, 3, toDisplay), style);
  }
  if (geometry.type === "LineString") return L.polyline(geoLatLngs(geometry.coordinates, 1, toDisplay), style);
  if (geometry.type === "MultiLineString") {
    return L.polyline(geoLatLngs(geometry.coordinates, 2, toDisplay), style);
  }
  if (geometry.type === "Point") {
    return L.circleMarker(toDisplay(geometry.coordinates[0], geometry.coordinates[1]), { ...style, radius: 3 });
  }
  return null;
}

export class OutlineLayer {
  constructor(toDisplay) {
    this.group = L.layerGroup();
    this.toDisplay = toDisplay;
  }

  set(features) {
    this.group.clearLayers();
    for (const f of features) {
      if (!f.geometry) continue;
      const layer = polygonLayer(f.geometry, this.toDisplay, {
        color: "#5b6b82", weight: 1.5, fill: false, interactive: false,
      });
      if (layer) this.group.addLayer(layer);
    }
  }
}

export class CellsLayer {
  constructor(toDisplay, onSelect) {
    this.group = L.layerGroup();
    this.toDisplay = toDisplay;
    this.onSelect = onSelect;
    this.cells = new Map();
  }

  // A reload (a resync of the live stream) updates the cells in place and drops only those
  // gone: clearing and redrawing all would leave every old label fading out over its new one.
  set(features) {
    const seen = new Set();
    for (const f of features) {
      this.upsert(f);
      seen.add(f.id);
    }
    for (const [id, entry] of this.cells) {
      if (seen.has(id)) continue;
      this.group.removeLayer(entry.layer);
      if (entry.casing) this.group.removeLayer(entry.casing);
      this.cells.delete(id);
    }
  }

  // A changed cell is restyled in place: removing and re-adding it would leave its old
  // permanent label fading out on top of the new one.
  upsert(f) {
    const level = f.properties.warning_level;
    const w = WARNING[level];
    const style = {
      color: w ? w.color : "#7D8AA0",
      weight: w ? w.weight : 1.5,
      dashArray: w ? null : "4 4",
      fillColor: w ? w.color : "#7D8AA0",
      fillOpacity: w ? w.fillOpacity : 0.04,
      className: `cell-shape cell-shape-${w ? level : "none"}`,
    };
    const labelClass = `cell-label ${level ? `cell-${level}` : ""}`;
    const old = this.cells.get(f.id);
    if (old && JSON.stringify(old.feature.geometry) === JSON.stringify(f.geometry)) {
      old.feature = f;
      old.layer.setStyle(style);
      const shape = old.layer.getElement?.();
      if (shape) shape.setAttribute("class", `${style.className} leaflet-interactive`);
      this.setCasing(old, f, w);
      const tip = old.layer.getTooltip();
      tip.options.className = labelClass;
      const el = tip.getElement();
      if (el) el.className = el.className.replace(/\bcell-(red|orange|yellow)\b/g, "").trim() + (level ? ` cell-${level}` : "");
      old.layer.setTooltipContent(this.label(f));
      return;
    }
    if (old) {
      this.group.removeLayer(old.layer);
      if (old.casing) this.group.removeLayer(old.casing);
    }
    const layer = polygonLayer(f.geometry, this.toDisplay, style);
    if (!layer) return;
    layer.bindTooltip(this.label(f), {
      permanent: true, direction: "center", pane: "gwCellLabels", className: labelClass,
    });
    const entry = { feature: f, layer, casing: null };
    layer.on("click", (ev) => this.onSelect(entry.feature, ev));
    this.setCasing(entry, f, w);
    this.group.addLayer(layer);
    this.cells.set(f.id, entry);
  }

  // A white outline under the red one: red stands out on any base map, light or dark.
  setCasing(entry, f, w) {
    if (entry.casing) {
      this.group.removeLayer(entry.casing);
      entry.casing = null;
    }
    if (!w?.casing) return;
    entry.casing = polygonLayer(f.geometry, this.toDisplay, {
      color: "#ffffff", weight: w.casing, fill: false, interactive: false, className: "cell-casing",
    });
    if (entry.casing) this.group.addLayer(entry.casing);
    entry.casing?.bringToBack();
  }

  label(f) {
    const level = Object.hasOwn(WARNING, f.properties.warning_level) ? f.properties.warning_level : null;
    const name = f.properties.name || f.id;
    return h("span", null, level ? `${name} · ${t(`warning.${level}`)}` : name);
  }

  relabel() {
    for (const { feature, layer } of this.cells.values()) layer.setTooltipContent(this.label(feature));
  }
}

function deviceIcon(props) {
  const status = deviceStatus(props.status);
  const letter = t(`kind.${props.kind}.short`);
  return L.divIcon({
    className: "",
    html: h("div", {
      class: `dev dev-${status}`,
      role: "img",
      "aria-label": `${t(`kind.${props.kind}`)} ${props.name || ""} ${t(`status.${status}`)}`,
    }, h("span", null, letter)),
    iconSize: [26, 26],
    iconAnchor: [13, 13],
  });
}

export class DevicesLayer {
  constructor(toDisplay, onSelect) {
    this.group = L.layerGroup();
    this.toDisplay = toDisplay;
    this.onSelect = onSelect;
    this.devices = new Map();
    this.spreader = new MarkerSpreader();
    this.group.addLayer(this.spreader.legs);
    this.onChange = () => {};
  }

  // Overlapping markers are fanned out on this map (js/map-spread.js).
  attach(map) {
    this.spreader.attach(map, () => [...this.devices.values()].filter((e) => e.marker));
  }

  set(features) {
    this.group.clearLayers();
    this.group.addLayer(this.spreader.legs);
    this.devices.clear();
    for (const f of features) this.upsert(f);
    this.onChange();
  }

  upsert(f) {
    const old = this.devices.get(f.id);
    if (old?.marker) this.group.removeLayer(old.marker);
    const entry = { feature: f, marker: null, at: null };
    if (f.geometry) {
      const [lon, lat] = f.geometry.coordinates;
      entry.at = L.latLng(this.toDisplay(lon, lat));
      entry.marker = L.marker(entry.at, {
        icon: deviceIcon(f.properties), keyboard: true, title: f.properties.name || f.id, zIndexOffset: 200,
      });
      entry.marker.bindTooltip(() => this.tooltip(f), { direction: "top", offset: [0, -12] });
      entry.marker.on("click", () => this.onSelect(f.id));
      this.group.addLayer(entry.marker);
    }
    this.devices.set(f.id, entry);
    this.spreader.schedule();
  }

  tooltip(f) {
    const p = f.properties;
    return h("div", null,
      h("strong", null, p.name || f.id), h("br"),
      `${t(`kind.${p.kind}`)} · ${t(`status.${p.status}`)}`, h("br"),
      // Why it is not plainly online (a flooding device says so here, as in the list).
      ...(p.status !== "online" && p.status_reasons?.length
        ? [p.status_reasons.map((r) => t(`reason.${r.code}`, r)).join("; "), h("br")] : []),
      `${t("device.last_seen")}: ${formatAgo(p.last_seen)}`);
  }

  // A state event from the live stream: online/offline/stopped.
  applyState(ev) {
    const entry = this.devices.get(ev.device);
    if (!entry) return false;
    const p = entry.feature.properties;
    p.status = ev.state === "online" ? "online" : "offline";
    p.last_seen = ev.ts;
    this.upsert(entry.feature);
    this.onChange();
    return true;
  }

  relabel() {
    for (const { feature } of this.devices.values()) this.upsert(feature);
  }
}

export class AlertsLayer {
  constructor(toDisplay, onSelect) {
    this.group = L.layerGroup();
    this.toDisplay = toDisplay;
    this.onSelect = onSelect;
    this.markers = new Map();
  }

  upsert(alert) {
    const old = this.markers.get(alert.id);
    if (old) this.group.removeLayer(old);
    if (alert.lon == null || alert.lat == null) return;
    const open = alert.status !== "acknowledged";
    const sev = Object.hasOwn(SEVERITY, alert.severity) ? alert.severity : "info";
    const marker = L.marker(this.toDisplay(alert.lon, alert.lat), {
      icon: L.divIcon({
        className: "",
        html: h("div", {
          class: `al al-${sev} ${open ? "pulse" : "acked"}`,
          style: { "--sev": SEVERITY[sev].color, "--ink": SEVERITY[sev].ink },
        }, h("span", null, "!")),
        iconSize: [28, 28],
        iconAnchor: [14, 14],
      }),
      title: `${t(`severity.${sev}`)}: ${alertTitle(alert)}${alert.title ? ` — ${alert.title}` : ""}`,
      zIndexOffset: 1000 + SEVERITY[sev].rank * 10,
      keyboard: true,
    });
    marker.on("click", () => this.onSelect(alert.id));
    this.group.addLayer(marker);
    this.markers.set(alert.id, marker);
  }

  remove(id) {
    const m = this.markers.get(id);
    if (m) this.group.removeLayer(m);
    this.markers.delete(id);
  }
}

export class PoisLayer {
  constructor(toDisplay) {
    this.group = L.layerGroup();
    this.toDisplay = toDisplay;
    this.features = [];
  }

  set(features) {
    this.features = features;
    this.group.clearLayers();
    for (const f of features) {
      const [lon, lat] = f.geometry.coordinates;
      const cat = f.properties.category || "place";
      const label = t(`poi.category.${cat}`) === `poi.category.${cat}` ? cat : t(`poi.category.${cat}`);
      const marker = L.marker(this.toDisplay(lon, lat), {
        icon: L.divIcon({
          className: "",
          html: h("div", { class: "poi", role: "img", "aria-label": label }, label.slice(0, 1).toUpperCase()),
          iconSize: [22, 22],
          iconAnchor: [11, 11],
        }),
        title: f.properties.name,
        keyboard: true,
      });
      marker.bindPopup(() => h("div", null, h("strong", null, f.properties.name), h("br"), label));
      this.group.addLayer(marker);
    }
  }

  relabel() {
    this.set(this.features);
  }
}
