// Zones on the map: the geofences and areas stored at the hub (GET /api/v1/zones, one kind
// each) and the zones and lines each camera watches (GET /api/v1/ui/camera-zones, mapped from
// image pixels by the camera's homography). Every kind has its own colour AND its own dash
// pattern, and a text label in the legend and on hover, so no kind is told by colour alone.
import * as L from "/ui/node_modules/leaflet/dist/leaflet-src.esm.js";
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { polygonLayer } from "./layers.js";

// Okabe-Ito blues, greens and purples: none is a warning colour, so a zone is never read as
// a warning. `dash` null: a solid line.
export const ZONE_STYLE = {
  inclusion: { color: "#009E73", dash: null },
  exclusion: { color: "#CC79A7", dash: "10 6" },
  intrusion: { color: "#56B4E9", dash: "2 5" },
  perimeter: { color: "#56B4E9", dash: null },
  restricted: { color: "#CC79A7", dash: null },
  poi_area: { color: "#9AA5B1", dash: "6 4" },
};
export const CAMERA_ZONE_STYLE = {
  intrusion: { color: "#F5F5F5", dash: "2 5" },
  loitering: { color: "#F5F5F5", dash: "8 5" },
  line: { color: "#F5F5F5", dash: null },
};

function zoneKind(kind, table) {
  return Object.hasOwn(table, kind) ? kind : null;
}

// Geofences and areas from GET /api/v1/zones.
export class ZonesLayer {
  constructor(toDisplay) {
    this.group = L.layerGroup();
    this.toDisplay = toDisplay;
    this.features = [];
  }

  set(features) {
    this.features = features;
    this.group.clearLayers();
    for (const f of features) {
      const kind = zoneKind(f.properties?.kind, ZONE_STYLE);
      if (!kind) continue;
      const s = ZONE_STYLE[kind];
      const layer = polygonLayer(f.geometry, this.toDisplay, {
        color: s.color, dashArray: s.dash, weight: 2.5, fillColor: s.color, fillOpacity: 0.06,
        className: `zone zone-${kind}`,
      });
      if (!layer) continue;
      layer.bindTooltip(() => h("span", null, h("strong", null, f.properties.name || f.id), " · ",
        t(`map.zone.${kind}`)), { sticky: true, className: "zone-label" });
      this.group.addLayer(layer);
    }
  }

  relabel() {
    this.set(this.features);
  }
}

// A short arrowhead at the end of a line, pointing from a to b: which way is "crossing".
function arrowHead(a, b, map) {
  const pa = map.latLngToLayerPoint(a);
  const pb = map.latLngToLayerPoint(b);
  const len = pa.distanceTo(pb);
  if (len < 1) return [];
  const ux = (pb.x - pa.x) / len;
  const uy = (pb.y - pa.y) / len;
  const back = L.point(pb.x - ux * 12, pb.y - uy * 12);
  const left = map.layerPointToLatLng(L.point(back.x - uy * 6, back.y + ux * 6));
  const right = map.layerPointToLatLng(L.point(back.x + uy * 6, back.y - ux * 6));
  return [left, b, right];
}

// Camera zones and lines from GET /api/v1/ui/camera-zones.
export class CameraZonesLayer {
  constructor(toDisplay) {
    this.group = L.layerGroup();
    this.toDisplay = toDisplay;
    this.features = [];
    this.notDrawn = 0;
    this.map = null;
  }

  attach(map) {
    this.map = map;
    map.on("zoomend", () => this.draw());
  }

  set(collection) {
    this.features = collection.features || [];
    this.notDrawn = collection.cameras_not_drawn || 0;
    this.draw();
  }

  draw() {
    this.group.clearLayers();
    for (const f of this.features) {
      const type = zoneKind(f.properties?.type, CAMERA_ZONE_STYLE);
      if (!type) continue;
      const s = CAMERA_ZONE_STYLE[type];
      const style = {
        color: s.color, dashArray: s.dash, weight: type === "line" ? 3.5 : 2, fillOpacity: 0.05,
        className: `camera-zone camera-zone-${type}`,
      };
      const layer = polygonLayer(f.geometry, this.toDisplay, style);
      if (!layer) continue;
      const label = () => h("span", null, h("strong", null, f.properties.zone), " · ",
        t(`map.camera_zone.${type}`), " · ", f.properties.device);
      layer.bindTooltip(label, { sticky: true, className: "zone-label" });
      this.group.addLayer(layer);
      const crossing = f.properties.crossing;
      if (type === "line" && this.map && Array.isArray(crossing) && crossing.length === 2) {
        // The direction that alerts, drawn across the line's middle (worked out by the hub
        // in image pixels, where "left" and "right" are defined).
        const [from, to] = crossing.map(([lon, lat]) => L.latLng(this.toDisplay(lon, lat)));
        const arrow = { ...style, dashArray: null, weight: 2, interactive: false };
        this.group.addLayer(L.polyline([from, to], arrow));
        this.group.addLayer(L.polyline(arrowHead(from, to, this.map), arrow));
      }
    }
  }

  relabel() {
    this.draw();
  }
}
