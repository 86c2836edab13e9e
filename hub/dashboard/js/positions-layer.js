// Live positions of officers, wristband wearers and anonymous tracks on one canvas.
// Thousands of markers that move every second: points are kept in normalised Web Mercator
// (computed once per update), each frame batches one path per style, and a frame is drawn
// only when something changed (requestAnimationFrame). Trails are the last N points.
import * as L from "/ui/node_modules/leaflet/dist/leaflet-src.esm.js";

export const ENTITY_STYLE = {
  officer: { fill: "#56B4E9", stroke: "#0b1320", shape: "diamond", r: 7 },
  wearer: { fill: "#CC79A7", stroke: "#0b1320", shape: "circle", r: 6 },
  track: { fill: "#D9DEE4", stroke: "#0b1320", shape: "square", r: 3.5 },
};
const SAMPLE_MAX = 4096;

function mercator(lon, lat) {
  const s = Math.sin((Math.max(-85.0511, Math.min(85.0511, lat)) * Math.PI) / 180);
  return [(lon + 180) / 360, 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)];
}

export const PositionsLayer = L.Layer.extend({
  initialize(options) {
    this.toDisplay = options.toDisplay; // (lon, lat) -> [lat, lon] in the tile datum
    this.trailPoints = options.trailPoints ?? 20;
    this.trailMaxAgeMs = (options.trailMaxAgeS ?? 120) * 1000;
    this.staleMs = (options.staleAfterS ?? 300) * 1000;
    this.entities = new Map();
    this.visibleKinds = new Set(["officer", "wearer", "track"]);
    this.selected = null;
    this.dirty = false;
    this.pendingUpdates = [];
    this.perf = { frames: 0, drawMs: [], recvToDrawMs: [], tsToDrawMs: [], updates: 0 };
    this.onSelect = options.onSelect || (() => {});
  },

  onAdd(map) {
    this._map = map;
    const pane = map.getPane("gwPositions") || map.createPane("gwPositions");
    pane.style.zIndex = 620;
    pane.style.pointerEvents = "none";
    this.canvas = L.DomUtil.create("canvas", "gw-positions-canvas", pane);
    this.ctx = this.canvas.getContext("2d");
    map.on("move zoomend resize viewreset", this._reset, this);
    map.on("zoomstart", this._hide, this);
    map.on("click", this._click, this);
    this._reset();
  },

  onRemove(map) {
    map.off("move zoomend resize viewreset", this._reset, this);
    map.off("zoomstart", this._hide, this);
    map.off("click", this._click, this);
    this.canvas.remove();
    this.canvas = null;
  },

  setKindVisible(kind, visible) {
    if (visible) this.visibleKinds.add(kind);
    else this.visibleKinds.delete(kind);
    this.requestDraw();
  },

  // One live or initial position. `p` has entity, entity_kind, lon, lat, ts, device, ...
  update(p, receivedAt = performance.now()) {
    const [dlat, dlon] = this.toDisplay(p.lon, p.lat);
    const m = mercator(dlon, dlat);
    const tsMs = Date.parse(p.ts);
    let e = this.entities.get(p.entity);
    if (!e) {
      e = { id: p.entity, trail: [] };
      this.entities.set(p.entity, e);
    } else if (tsMs < e.tsMs) {
      return; // an older position arriving late must not move the marker back
    }
    e.kind = p.entity_kind;
    e.device = p.device;
    e.lon = p.lon;
    e.lat = p.lat;
    e.ts = p.ts;
    e.tsMs = tsMs;
    e.speed = p.speed_mps;
    e.heading = p.heading_deg;
    e.accuracy = p.accuracy_m;
    e.m = m;
    if (this.trailPoints > 0) {
      e.trail.push([m[0], m[1], tsMs]);
      if (e.trail.length > this.trailPoints) e.trail.shift();
    }
    this.pendingUpdates.push([receivedAt, tsMs]);
    this.perf.updates += 1;
    this.requestDraw();
  },

  requestDraw() {
    if (this.dirty) return;
    this.dirty = true;
    requestAnimationFrame(() => this.draw());
  },

  _hide() {
    if (this.canvas) this.canvas.style.visibility = "hidden";
  },

  _reset() {
    if (!this.canvas) return;
    const map = this._map;
    const size = map.getSize();
    const ratio = window.devicePixelRatio || 1;
    if (this.canvas.width !== size.x * ratio || this.canvas.height !== size.y * ratio) {
      this.canvas.width = size.x * ratio;
      this.canvas.height = size.y * ratio;
      this.canvas.style.width = `${size.x}px`;
      this.canvas.style.height = `${size.y}px`;
    }
    L.DomUtil.setPosition(this.canvas, map.containerPointToLayerPoint([0, 0]));
    this.canvas.style.visibility = "visible";
    this.dirty = false;
    this.draw();
  },

  _frame() {
    const map = this._map;
    const scale = 256 * Math.pow(2, map.getZoom());
    const origin = map.project(map.getCenter()).subtract(map.getSize().divideBy(2));
    return { scale, ox: origin.x, oy: origin.y };
  },

  draw() {
    this.dirty = false;
    if (!this.canvas) return;
    const t0 = performance.now();
    const { scale, ox, oy } = this._frame();
    const ctx = this.ctx;
    const ratio = window.devicePixelRatio || 1;
    const w = this.canvas.width / ratio;
    const h = this.canvas.height / ratio;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const now = Date.now();
    const pad = 20;
    // Trails first, one stroke per kind.
    if (this.trailPoints > 0) {
      ctx.lineWidth = 2;
      ctx.lineJoin = "round";
      for (const kind of this.visibleKinds) {
        const style = ENTITY_STYLE[kind];
        if (!style) continue;
        ctx.beginPath();
        for (const e of this.entities.values()) {
          if (e.kind !== kind || e.trail.length < 2) continue;
          let started = false;
          for (const [mx, my, tms] of e.trail) {
            if (now - tms > this.trailMaxAgeMs) continue;
            const x = mx * scale - ox;
            const y = my * scale - oy;
            if (started) ctx.lineTo(x, y);
            else {
              ctx.moveTo(x, y);
              started = true;
            }
          }
        }
        ctx.strokeStyle = style.fill;
        ctx.globalAlpha = 0.55;
        ctx.stroke();
      }
      ctx.globalAlpha = 1;
    }
    // Markers: fresh ones filled, stale ones hollow; one path per (kind, freshness).
    for (const kind of this.visibleKinds) {
      const style = ENTITY_STYLE[kind];
      if (!style) continue;
      const fresh = new Path2D();
      const stale = new Path2D();
      for (const e of this.entities.values()) {
        if (e.kind !== kind) continue;
        const x = e.m[0] * scale - ox;
        const y = e.m[1] * scale - oy;
        if (x < -pad || y < -pad || x > w + pad || y > h + pad) continue;
        const path = now - e.tsMs > this.staleMs ? stale : fresh;
        addShape(path, style.shape, x, y, style.r);
      }
      ctx.fillStyle = style.fill;
      ctx.strokeStyle = style.stroke;
      ctx.lineWidth = 1.5;
      ctx.fill(fresh);
      ctx.stroke(fresh);
      ctx.setLineDash([3, 2]);
      ctx.strokeStyle = style.fill;
      ctx.stroke(stale);
      ctx.setLineDash([]);
    }
    const sel = this.selected && this.entities.get(this.selected);
    if (sel && this.visibleKinds.has(sel.kind)) {
      const x = sel.m[0] * scale - ox;
      const y = sel.m[1] * scale - oy;
      ctx.beginPath();
      ctx.arc(x, y, 13, 0, Math.PI * 2);
      ctx.lineWidth = 3;
      ctx.strokeStyle = "#ffffff";
      ctx.stroke();
    }
    const t1 = performance.now();
    const perf = this.perf;
    perf.frames += 1;
    push(perf.drawMs, t1 - t0);
    const wall = Date.now();
    for (const [recv, tsMs] of this.pendingUpdates) {
      push(perf.recvToDrawMs, t1 - recv);
      push(perf.tsToDrawMs, wall - tsMs);
    }
    this.pendingUpdates.length = 0;
  },

  // Screen position of an entity (for tests and the detail panel), or null if hidden.
  screenPoint(id) {
    const e = this.entities.get(id);
    if (!e || !this._map) return null;
    const { scale, ox, oy } = this._frame();
    return { x: e.m[0] * scale - ox, y: e.m[1] * scale - oy };
  },

  nearest(containerPoint, maxPx = 12) {
    const { scale, ox, oy } = this._frame();
    let best = null;
    let bestD = maxPx * maxPx;
    for (const e of this.entities.values()) {
      if (!this.visibleKinds.has(e.kind)) continue;
      const dx = e.m[0] * scale - ox - containerPoint.x;
      const dy = e.m[1] * scale - oy - containerPoint.y;
      const d = dx * dx + dy * dy;
      if (d <= bestD) {
        bestD = d;
        best = e;
      }
    }
    return best;
  },

  _click(ev) {
    const hit = this.nearest(ev.containerPoint);
    if (hit) this.onSelect(hit);
  },

  select(id) {
    this.selected = id;
    this.requestDraw();
  },

  clear() {
    this.entities.clear();
    this.requestDraw();
  },
});

function addShape(path, shape, x, y, r) {
  if (shape === "diamond") {
    path.moveTo(x, y - r);
    path.lineTo(x + r, y);
    path.lineTo(x, y + r);
    path.lineTo(x - r, y);
    path.closePath();
  } else if (shape === "square") {
    path.rect(x - r, y - r, 2 * r, 2 * r);
  } else {
    path.moveTo(x + r, y);
    path.arc(x, y, r, 0, Math.PI * 2);
  }
}

function push(arr, v) {
  arr.push(v);
  if (arr.length > SAMPLE_MAX) arr.splice(0, arr.length - SAMPLE_MAX);
}
