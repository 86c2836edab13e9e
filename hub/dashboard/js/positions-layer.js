// Live positions of officers, wristband wearers and anonymous tracks on one canvas.
// Thousands of markers that move every second: points are kept in normalised Web Mercator
// (computed once per update), each frame batches one path per style, and a frame is drawn
// only when something changed (requestAnimationFrame). Trails are the last N points.
// Anonymous tracks (camera and LiDAR) that stop reporting fade out from trackFadeAfterS and
// are removed at trackRemoveAfterS: a person who walked away leaves no ghost on the map.
import * as L from "/ui/node_modules/leaflet/dist/leaflet-src.esm.js";

export const ENTITY_STYLE = {
  officer: { fill: "#56B4E9", stroke: "#0b1320", shape: "diamond", r: 7 },
  wearer: { fill: "#CC79A7", stroke: "#0b1320", shape: "circle", r: 6 },
  track: { fill: "#D9DEE4", stroke: "#0b1320", shape: "square", r: 3.5 },
};
const SAMPLE_MAX = 4096;
const FADE_STEPS = 8; // fading tracks use one of this many alpha levels (a sprite each)
const SWEEP_MS = 1000;
const TRAIL_BUDGET = 1500;
const sprites = new Map();

// `fade`: 0 (opaque) to FADE_STEPS (gone); the alpha is baked into the sprite's pixels.
function spriteFor(kind, stale, ratio, fade = 0) {
  const key = `${kind}:${stale}:${ratio}:${fade}`;
  let sprite = sprites.get(key);
  if (sprite) return sprite;
  const style = ENTITY_STYLE[kind];
  if (!style) return null;
  const size = Math.ceil(style.r * 2 + 4);
  const canvas = document.createElement("canvas");
  canvas.width = size * ratio;
  canvas.height = size * ratio;
  const c = canvas.getContext("2d");
  c.scale(ratio, ratio);
  const path = new Path2D();
  addShape(path, style.shape, size / 2, size / 2, style.r);
  if (stale) {
    c.setLineDash([3, 2]);
    c.strokeStyle = style.fill;
    c.lineWidth = 1.5;
    c.stroke(path);
  } else {
    c.fillStyle = style.fill;
    c.strokeStyle = style.stroke;
    c.lineWidth = 1.5;
    c.fill(path);
    c.stroke(path);
  }
  // Keep the shape's pixels (opaque enough to see) as offsets and packed RGBA values.
  const n = size * ratio;
  const data = new Uint32Array(c.getImageData(0, 0, n, n).data.buffer);
  const offsets = [];
  const colours = [];
  const alpha = Math.round(255 * (1 - fade / FADE_STEPS)) << 24;
  for (let yy = 0; yy < n; yy++) {
    for (let xx = 0; xx < n; xx++) {
      const v = data[yy * n + xx];
      if (v >>> 24 >= 96) {
        offsets.push(xx, yy);
        colours.push(((v & 0x00ffffff) | alpha) >>> 0);
      }
    }
  }
  sprite = { size: n, half: Math.floor(n / 2), offsets: Int32Array.from(offsets), colours: Uint32Array.from(colours) };
  sprites.set(key, sprite);
  return sprite;
}

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
    this.trackFadeMs = (options.trackFadeAfterS ?? 30) * 1000;
    this.trackRemoveMs = (options.trackRemoveAfterS ?? 120) * 1000;
    this.removedTracks = 0;
    this.entities = new Map();
    this.visibleKinds = new Set(["officer", "wearer", "track"]);
    this.selected = null;
    this.dirty = false;
    this.pendingUpdates = [];
    this.perf = {
      frames: 0, drawMs: new Samples(), recvToDrawMs: new Samples(), tsToDrawMs: new Samples(), updates: 0,
    };
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
    // Fading needs frames while nothing moves; the sweep also drops expired tracks.
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
    this._reset();
  },

  // Remove anonymous tracks older than trackRemoveMs; redraw while any is fading.
  sweep(now = Date.now()) {
    let fading = false;
    for (const [id, e] of this.entities) {
      if (e.kind !== "track") continue;
      const age = now - e.tsMs;
      if (age > this.trackRemoveMs) {
        this.entities.delete(id);
        this.removedTracks += 1;
        if (this.selected === id) this.selected = null;
        fading = true;
      } else if (age > this.trackFadeMs) {
        fading = true;
      }
    }
    if (fading) this.requestDraw();
  },

  // 0 (opaque) .. FADE_STEPS for an entity at `now`; officers and wearers never fade.
  fadeOf(e, now) {
    if (e.kind !== "track") return 0;
    const age = now - e.tsMs;
    if (age <= this.trackFadeMs) return 0;
    const f = (age - this.trackFadeMs) / (this.trackRemoveMs - this.trackFadeMs);
    return Math.min(FADE_STEPS - 1, 1 + Math.floor(f * (FADE_STEPS - 1)));
  },

  onRemove(map) {
    clearInterval(this.sweepTimer);
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
    // Which entities are on screen (cheap arithmetic; nothing is rasterised yet).
    const onScreen = [];
    for (const e of this.entities.values()) {
      if (!this.visibleKinds.has(e.kind)) continue;
      if (e.kind === "track" && now - e.tsMs > this.trackRemoveMs) continue; // until the sweep
      const x = e.m[0] * scale - ox;
      const y = e.m[1] * scale - oy;
      if (x < -pad || y < -pad || x > w + pad || y > h + pad) continue;
      onScreen.push([e, x, y]);
    }
    // Markers: without a GPU, rasterising thousands of vector shapes per frame is what costs.
    // Each (kind, fresh|stale) shape is rasterised once into a pixel list and copied into one
    // ImageData buffer, which is put on the canvas in a single call.
    const W = this.canvas.width;
    const H = this.canvas.height;
    if (!this.img || this.img.width !== W || this.img.height !== H) {
      this.img = ctx.createImageData(W, H);
      this.px = new Uint32Array(this.img.data.buffer);
    }
    const px = this.px;
    px.fill(0);
    for (const [e, x, y] of onScreen) {
      const fade = this.fadeOf(e, now);
      const sprite = spriteFor(e.kind, fade === 0 && now - e.tsMs > this.staleMs, ratio, fade);
      if (!sprite) continue;
      const x0 = Math.round(x * ratio) - sprite.half;
      const y0 = Math.round(y * ratio) - sprite.half;
      const { offsets, colours } = sprite;
      if (x0 >= 0 && y0 >= 0 && x0 + sprite.size < W && y0 + sprite.size < H) {
        const base = y0 * W + x0;
        for (let k = 0; k < offsets.length; k += 2) px[base + offsets[k + 1] * W + offsets[k]] = colours[k >> 1];
      } else {
        for (let k = 0; k < offsets.length; k += 2) {
          const xx = x0 + offsets[k];
          const yy = y0 + offsets[k + 1];
          if (xx >= 0 && yy >= 0 && xx < W && yy < H) px[yy * W + xx] = colours[k >> 1];
        }
      }
    }
    ctx.putImageData(this.img, 0, 0);
    // Trails: rasterising thousands of anti-aliased polylines is what costs in a software
    // canvas, so at most TRAIL_BUDGET trails are drawn, officers first, then wearers, tracks.
    if (this.trailPoints > 0) {
      ctx.lineWidth = 1.5;
      ctx.globalAlpha = 0.55;
      let budget = TRAIL_BUDGET;
      for (const kind of ["officer", "wearer", "track"]) {
        if (!this.visibleKinds.has(kind) || budget <= 0) continue;
        ctx.beginPath();
        for (const [e] of onScreen) {
          if (e.kind !== kind || e.trail.length < 2 || budget <= 0) continue;
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
          budget -= 1;
        }
        ctx.strokeStyle = ENTITY_STYLE[kind].fill;
        ctx.stroke();
      }
      ctx.globalAlpha = 1;
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
    perf.drawMs.add(t1 - t0);
    const wall = Date.now();
    for (const [recv, tsMs] of this.pendingUpdates) {
      perf.recvToDrawMs.add(t1 - recv);
      perf.tsToDrawMs.add(wall - tsMs);
    }
    this.pendingUpdates.length = 0;
  },

  // Rendering figures for the read-only diagnostic (copies: reading them changes nothing).
  diagnostics() {
    const perf = this.perf;
    return {
      entities: this.entities.size,
      removed_tracks: this.removedTracks,
      frames: perf.frames,
      updates: perf.updates,
      draw_ms: perf.drawMs.values(),
      draw_count: perf.drawMs.n,
      recv_to_draw_ms: perf.recvToDrawMs.values(),
      recv_to_draw_count: perf.recvToDrawMs.n,
      ts_to_draw_ms: perf.tsToDrawMs.values(),
      ts_to_draw_count: perf.tsToDrawMs.n,
    };
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

// The newest SAMPLE_MAX measurements in a ring: O(1) per sample at thousands per second.
class Samples {
  constructor() {
    this.buf = new Float64Array(SAMPLE_MAX);
    this.n = 0;
  }

  add(v) {
    this.buf[this.n % SAMPLE_MAX] = v;
    this.n += 1;
  }

  // Oldest first.
  values() {
    if (this.n <= SAMPLE_MAX) return Array.from(this.buf.subarray(0, this.n));
    const start = this.n % SAMPLE_MAX;
    return [...this.buf.subarray(start), ...this.buf.subarray(0, start)];
  }
}
