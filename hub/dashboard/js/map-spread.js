// Markers that would cover one another on screen (two cameras on one pole, a gateway beside
// a LiDAR) are fanned out on a small circle around their common point, each with a thin leg
// to where it really is, so every one stays visible and clickable at every zoom. Recomputed
// when the zoom or the set of markers changes: O(n^2) over markers on screen, a district's
// few hundred devices.
import * as L from "/ui/node_modules/leaflet/dist/leaflet-src.esm.js";

export class MarkerSpreader {
  // minPx: markers closer than this (screen pixels) are one group.
  constructor({ minPx = 30 } = {}) {
    this.minPx = minPx;
    this.legs = L.layerGroup();
    this.map = null;
    this.pending = false;
    this.items = () => [];
  }

  // items(): [{marker, at: L.LatLng}] with `at` the true position.
  attach(map, items) {
    this.map = map;
    this.items = items;
    map.on("zoomend viewreset", () => this.schedule());
  }

  schedule() {
    if (this.pending || !this.map) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.spread();
    });
  }

  groups(points) {
    const min2 = this.minPx * this.minPx;
    const seen = new Uint8Array(points.length);
    const out = [];
    for (let i = 0; i < points.length; i++) {
      if (seen[i]) continue;
      seen[i] = 1;
      const group = [i];
      // Single linkage: a chain of near markers is one group, so no fanned marker lands on
      // a neighbour that was left where it was.
      for (let g = 0; g < group.length; g++) {
        const p = points[group[g]];
        for (let j = 0; j < points.length; j++) {
          if (seen[j]) continue;
          const dx = points[j].x - p.x;
          const dy = points[j].y - p.y;
          if (dx * dx + dy * dy < min2) {
            seen[j] = 1;
            group.push(j);
          }
        }
      }
      out.push(group);
    }
    return out;
  }

  spread() {
    const map = this.map;
    if (!map) return;
    this.legs.clearLayers();
    const items = this.items();
    const points = items.map((it) => map.latLngToLayerPoint(it.at));
    for (const group of this.groups(points)) {
      if (group.length === 1) {
        const it = items[group[0]];
        it.marker.setLatLng(it.at);
        continue;
      }
      let cx = 0;
      let cy = 0;
      for (const i of group) {
        cx += points[i].x;
        cy += points[i].y;
      }
      cx /= group.length;
      cy /= group.length;
      // Spaced minPx apart on the circle (at least minPx from the centre).
      const r = Math.max(this.minPx, (this.minPx * group.length) / (2 * Math.PI));
      group.forEach((i, k) => {
        const a = -Math.PI / 2 + (2 * Math.PI * k) / group.length;
        const shown = map.layerPointToLatLng(L.point(cx + r * Math.cos(a), cy + r * Math.sin(a)));
        items[i].marker.setLatLng(shown);
        this.legs.addLayer(L.polyline([items[i].at, shown], {
          color: "#eef2f6", weight: 1, opacity: 0.8, interactive: false, className: "spread-leg",
        }));
        this.legs.addLayer(L.circleMarker(items[i].at, {
          radius: 2.5, color: "#eef2f6", weight: 1, fillOpacity: 1, interactive: false,
        }));
      });
    }
  }
}
