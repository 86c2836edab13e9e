// Where the problem is: the phone's position, corrected by a tap on a small map. Stored and
// sent in WGS84; drawn in the tile source's datum (datum.js), as on the dashboard.
import * as L from "/ui/node_modules/leaflet/dist/leaflet-src.esm.js";
import { displayProjector } from "/ui/js/datum.js";
import { escapeHtml } from "/ui/js/dom.js";
import { t } from "/ui/js/i18n.js";

// The inverse of the display projection, by fixed-point iteration (GCJ-02 has no closed-form
// inverse; three rounds are well under a metre).
function inverse(toDisplay, lat, lng) {
  let lon = lng;
  let la = lat;
  for (let i = 0; i < 3; i += 1) {
    const [dLat, dLng] = toDisplay(lon, la);
    lon -= dLng - lng;
    la -= dLat - lat;
  }
  return [lon, la];
}

export class PlacePicker {
  constructor(el, config, onChange) {
    this.toDisplay = displayProjector(config.tile_datum);
    this.onChange = onChange;
    this.point = null; // {lon, lat, accuracy_m, source: "gps" | "map"}
    const [lon, lat] = config.center || [114.057, 22.543];
    this.map = L.map(el, { zoomControl: true, attributionControl: true }).setView(
      this.toDisplay(lon, lat), config.zoom || 15,
    );
    this.map.attributionControl.setPrefix(""); // Leaflet's own English link, as on the dashboard
    this.relabel();
    const base = config.base_layer || {};
    if ((base.kind === "url" || base.kind === "local_tiles") && navigator.onLine) {
      L.tileLayer(base.url, {
        attribution: escapeHtml(base.attribution || ""), // Leaflet renders attribution as HTML
        subdomains: base.subdomains || "abc",
        maxZoom: config.max_zoom,
      }).addTo(this.map);
    } else {
      el.classList.add("no-tiles");
    }
    this.outline = L.geoJSON(null, {
      coordsToLatLng: (c) => L.latLng(...this.toDisplay(c[0], c[1])),
      style: { color: "#1f4e79", weight: 2, fill: false },
      interactive: false,
    }).addTo(this.map);
    this.marker = null;
    this.map.on("click", (ev) => {
      const [lon, lat] = inverse(this.toDisplay, ev.latlng.lat, ev.latlng.lng);
      this.set({ lon, lat, accuracy_m: null, source: "map" });
    });
  }

  showOutline(geojson) {
    if (geojson?.features?.length) this.outline.addData(geojson);
  }

  // Moves without animation: the map is small and the marker must be where the finger expects
  // it the moment the position is shown.
  set(point, zoom = this.map.getZoom()) {
    this.point = point;
    const at = this.toDisplay(point.lon, point.lat);
    if (this.marker) {
      this.marker.setLatLng(at);
    } else {
      this.marker = L.marker(at, { draggable: true, keyboard: true, autoPan: true }).addTo(this.map);
      this.marker.on("dragend", () => {
        const ll = this.marker.getLatLng();
        const [lon, lat] = inverse(this.toDisplay, ll.lat, ll.lng);
        this.set({ lon, lat, accuracy_m: null, source: "map" });
      });
    }
    this.map.setView(at, zoom, { animate: false });
    this.onChange(point);
  }

  clear() {
    this.point = null;
    if (this.marker) this.marker.remove();
    this.marker = null;
    this.onChange(null);
  }

  locate() {
    return new Promise((resolve, reject) => {
      if (!navigator.geolocation) {
        reject(new Error("no geolocation"));
        return;
      }
      navigator.geolocation.getCurrentPosition(
        (pos) => {
          const point = {
            lon: pos.coords.longitude,
            lat: pos.coords.latitude,
            accuracy_m: pos.coords.accuracy,
            source: "gps",
          };
          this.set(point, Math.max(this.map.getZoom(), 17));
          resolve(point);
        },
        reject,
        { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 },
      );
    });
  }

  // The zoom buttons' names, in the page's language (Leaflet's are English).
  relabel() {
    const zc = this.map.zoomControl;
    for (const [el, key] of [[zc._zoomInButton, "map.zoom_in"], [zc._zoomOutButton, "map.zoom_out"]]) {
      el.title = t(key);
      el.setAttribute("aria-label", t(key));
    }
  }

  invalidate() {
    this.map.invalidateSize();
  }
}
