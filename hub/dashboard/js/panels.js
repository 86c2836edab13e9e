// Side panels: alert / device / entity / cell details, track playback,
// search and POI import. Controls are rendered only when the role holds the permission.
import * as L from "/ui/node_modules/leaflet/dist/leaflet-src.esm.js";
import { api, fetchAll } from "./api.js";
import { t, formatTime, formatDateTime, formatAgo, figure, toZoneInput, fromZoneInput } from "./i18n.js";
import { fill, h, svg } from "./dom.js";
import { deviceStatus, severityBadge, DEVICE_STATUS, WARNING } from "./layers.js";
import { ENTITY_STYLE } from "./positions-layer.js";
import { mountWarning } from "./warnings.js";
import { alertTitle } from "./alert-text.js";

const $ = (sel) => document.querySelector(sel);
const HEALTH_METRICS = ["fps", "inference_ms", "outbox_depth", "queue_depth", "cpu_temp_c"];

// A list of nodes: a sparkline of the finite values with its min / last / max under it.
export function sparkline(values, width = 320, height = 64) {
  const pts = values.filter((v) => Number.isFinite(v));
  if (pts.length < 2) return [h("p", { class: "muted" }, t("device.no_health"))];
  const lo = Math.min(...pts);
  const hi = Math.max(...pts);
  const last = pts[pts.length - 1];
  const span = hi - lo || 1;
  const step = width / (pts.length - 1);
  const d = pts.map((v, i) => `${(i * step).toFixed(1)},${(height - 4 - ((v - lo) / span) * (height - 8)).toFixed(1)}`);
  return [
    svg("svg", {
      class: "spark", viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": t("device.sparkline_label", { lo: lo.toFixed(1), hi: hi.toFixed(1), last: last.toFixed(1) }),
    }, svg("polyline", { points: d.join(" ") })),
    h("div", { class: "spark-scale" },
      h("span", null, `${t("device.min")} ${lo.toFixed(1)}`),
      h("span", null, `${t("device.last")} ${last.toFixed(1)}`),
      h("span", null, `${t("device.max")} ${hi.toFixed(1)}`)),
  ];
}

// A definition list from [term, value] pairs (values are shown as text).
function kv(rows) {
  return h("dl", { class: "kv" }, rows.filter(Boolean).map(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
}

export class Panels {
  constructor(dash) {
    this.dash = dash;
    this.current = null; // {type, id}
    this.play = null;
    $("#poi-file").addEventListener("change", async (ev) => {
      await this.importPois(ev.target.files[0]);
      ev.target.value = ""; // choosing the same (fixed) file again imports it again
    });
  }

  // --- detail container -------------------------------------------------------------------
  // The body scrolls when it is tall (an evidence image at 1080p); the actions below it
  // (acknowledge, set warning, playback) always stay in view.
  openDetail(type, id, body, actions = []) {
    this.current = { type, id };
    const box = $("#detail");
    box.hidden = false;
    const close = h("button", {
      type: "button", class: "close", "aria-label": t("detail.close"), title: t("detail.close"),
    }, "×");
    close.addEventListener("click", () => this.closeDetail());
    fill(box,
      h("div", { class: "detail-head" }, h("h2", { id: "detail-heading" }, t(`detail.${type}`)), close),
      h("div", { class: "detail-body" }, body),
      h("div", { class: "detail-actions" }, actions));
    return box;
  }

  closeDetail() {
    $("#detail").hidden = true;
    this.current = null;
    this.dash.positions?.select(null);
    this.stopPlayback();
    this.dash.playback.clearLayers();
  }

  rerender() {
    const c = this.current;
    if (!c) return;
    if (c.type === "alert") this.showAlert(c.id);
    else if (c.type === "device") this.showDevice(c.id);
    else if (c.type === "entity") this.showEntity(c.id);
    else if (c.type === "cell") this.showCell(this.dash.cells.cells.get(c.id)?.feature);
    else if (c.type === "org") this.dash.org.render();
  }

  // Pan only when the point is off screen (or asked to centre): the district view the
  // command room is watching should not jump at every click.
  reveal(lon, lat, centre = false) {
    const map = this.dash.map;
    const at = this.dash.toDisplay(lon, lat);
    if (centre || !map.getBounds().pad(-0.1).contains(at)) map.panTo(at, { animate: false });
  }

  // --- alert ------------------------------------------------------------------------------
  async showAlert(id) {
    const detail = await api(`/api/v1/alerts/${encodeURIComponent(id)}`);
    this.renderAlert(detail);
    if (detail.lon != null) this.reveal(detail.lon, detail.lat);
  }

  // A live change to the open alert (another operator's acknowledgement or note): read it
  // again, keeping the focus and what this operator was typing.
  async refreshAlert(id) {
    const detail = await api(`/api/v1/alerts/${encodeURIComponent(id)}`);
    if (this.current?.type !== "alert" || this.current.id !== id) return;
    const typed = $("#ack-note")?.value;
    const focused = document.activeElement;
    this.renderAlert(detail, false);
    const note = $("#ack-note");
    if (note && typed) note.value = typed;
    if (focused?.id && focused.id !== "detail") document.getElementById(focused.id)?.focus();
  }

  renderAlert(a, focus = true) {
    const d = this.dash;
    const acked = a.status === "acknowledged";
    const rows = [
      [t("alert.kind"), t(`alert_kind.${a.kind}`)],
      a.title ? [t("triage.device_text"), a.title] : null,
      [t("alert.device"), a.device],
      [t("alert.time"), formatDateTime(a.ts)],
      [t("alert.location"), a.lon != null ? `${a.lat.toFixed(5)}, ${a.lon.toFixed(5)}` : "—"],
      [t("alert.zone"), a.zone || "—"],
      [t("alert.entity"), a.entity || "—"],
      [t("alert.status"), acked ? t("alert.acked_by_at", { who: a.acknowledged_by, at: formatTime(a.acknowledged_at) }) : t("alert.open")],
    ];
    const notes = (a.notes || []).map((n) => h("li", null,
      h("strong", null, n.author), " ", h("time", { datetime: n.created_at }, formatTime(n.created_at)), h("br"), n.text));
    const box = this.openDetail("alert", a.id, [
      h("p", { class: "detail-title" }, severityBadge(a.severity), " ", alertTitle(a)),
      a.has_evidence ? h("figure", { class: "evidence" },
        h("img", { alt: t("alert.evidence_alt"), src: `/api/v1/alerts/${encodeURIComponent(a.id)}/evidence` }),
        h("figcaption", null, t("alert.evidence"))) : null,
      kv(rows),
      notes.length ? [h("h3", null, t("alert.notes")), h("ul", { class: "notes" }, notes)] : null,
    ], d.can("alerts:ack") && !acked ? h("form", { class: "ack-form" },
      h("label", { for: "ack-note" }, t("alert.note")),
      h("textarea", { id: "ack-note", rows: 2, maxlength: 2000 }),
      h("button", { type: "submit", class: "primary ack-detail" }, t("alert.ack"))) : null);
    const form = box.querySelector(".ack-form");
    if (form) {
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        await d.feed.ack(a.id, box.querySelector("#ack-note").value.trim() || undefined);
      });
    }
    if (focus) box.focus();
  }

  // --- device -----------------------------------------------------------------------------
  async showDevice(id, centre = false) {
    const d = this.dash;
    const info = await api(`/api/v1/devices/${encodeURIComponent(id)}`);
    const onMap = d.devices.devices.get(id)?.feature;
    const status = deviceStatus(onMap?.properties.status || info.online);
    const reasons = onMap?.properties.status_reasons || [];
    const metric = this.metric || "fps";
    const select = h("select", { id: "health-metric" },
      HEALTH_METRICS.map((m) => h("option", { value: m, selected: m === metric }, t(`metric.${m}`))));
    const box = this.openDetail("device", id, [
      h("p", { class: "detail-title" }, h("span", { class: `dev-dot dev-${status}` }), " ", info.name || info.id, " ",
        h("span", {
          class: `status-label status-${status}`,
          style: { "border-color": (DEVICE_STATUS[status] || DEVICE_STATUS.unknown).color },
        }, t(`status.${status}`))),
      reasons.length && status !== "online"
        ? h("p", { class: "muted status-why" }, reasons.map((r) => t(`reason.${r.code}`, r)).join("; ")) : null,
      kv([
        [t("device.id"), info.id],
        [t("device.kind"), t(`kind.${info.kind}`)],
        [t("device.last_seen"), formatAgo(onMap?.properties.last_seen || info.last_seen)],
        [t("device.software"), info.sw_version || "—"],
        [t("device.config"), t("device.config_versions", {
          applied: info.config_version_applied ?? "—", pushed: info.config_version_pushed ?? "—",
        })],
      ]),
      h("h3", null, t("device.health")),
      h("label", { for: "health-metric" }, t("device.metric")),
      select,
      h("div", { id: "health-spark", class: "spark-box" }, t("detail.loading")),
    ]);
    const health = await api(`/api/v1/devices/${encodeURIComponent(id)}/health?limit=120`);
    const records = health.items.slice().reverse();
    const draw = () => {
      const m = box.querySelector("#health-metric").value;
      this.metric = m;
      // A figure the device does not report is null (or absent): not a 0 on the chart.
      const values = records.map((r) => (typeof r.payload[m] === "number" ? r.payload[m] : NaN));
      fill(box.querySelector("#health-spark"), values.some(Number.isFinite) || !records.length
        ? sparkline(values)
        : h("p", { class: "muted not-reported" }, t("live.not_reported")));
    };
    box.querySelector("#health-metric").addEventListener("change", draw);
    draw();
    if (onMap?.geometry) this.reveal(...onMap.geometry.coordinates, centre);
  }

  // --- entity and track playback ----------------------------------------------------------
  showEntity(id) {
    const d = this.dash;
    const e = d.positions.entities.get(id);
    if (!e) return;
    d.positions.select(id);
    const now = new Date();
    const from = new Date(now.getTime() - 15 * 60000);
    const style = Object.hasOwn(ENTITY_STYLE, e.kind) ? ENTITY_STYLE[e.kind] : null;
    const box = this.openDetail("entity", id, [
      h("p", { class: "detail-title" },
        style ? h("i", { class: `shape-${style.shape}`, style: { background: style.fill } }) : null, " ", id),
      kv([
        [t("entity.kind"), t(`entity.${e.kind}`)],
        [t("alert.device"), e.device],
        [t("entity.last_fix"), `${formatTime(e.ts)} (${formatAgo(e.ts)})`],
        [t("entity.position"), `${e.lat.toFixed(5)}, ${e.lon.toFixed(5)}`],
        [t("entity.speed"), figure(e.speed, (v) => t("entity.speed_value", { v: v.toFixed(1) }))],
      ]),
    ], [
      h("h3", null, t("playback.title")),
      h("form", { class: "playback-form" },
        h("label", { for: "pb-from" }, t("playback.from")),
        h("input", { id: "pb-from", type: "datetime-local", value: toZoneInput(from) }),
        h("label", { for: "pb-to" }, t("playback.to")),
        h("input", { id: "pb-to", type: "datetime-local", value: toZoneInput(new Date(now.getTime() + 60000)) }),
        h("button", { type: "submit", class: "primary" }, t("playback.load"))),
      h("div", { id: "pb-controls", class: "pb-controls", hidden: true },
        h("button", { type: "button", id: "pb-play" }, t("playback.play")),
        h("label", { for: "pb-slider", class: "sr-only" }, t("playback.position")),
        h("input", { id: "pb-slider", type: "range", min: 0, value: 0 }),
        h("output", { id: "pb-time" })),
      h("p", { id: "pb-status", class: "muted", role: "status" }),
    ]);
    box.querySelector(".playback-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.loadPlayback(id, fromZoneInput(box.querySelector("#pb-from").value), fromZoneInput(box.querySelector("#pb-to").value));
    });
  }

  async loadPlayback(id, from, to) {
    const d = this.dash;
    this.stopPlayback();
    d.playback.clearLayers();
    const status = $("#pb-status");
    status.textContent = t("detail.loading");
    const points = await fetchAll("/api/v1/positions/history", {
      entity: id, since: from.toISOString(), until: to.toISOString(),
    }, 20000);
    status.textContent = t("playback.points", { n: points.length });
    if (points.length === 0) return;
    const latlngs = points.map((p) => d.toDisplay(p.lon, p.lat));
    L.polyline(latlngs, { color: "#ffffff", weight: 3, opacity: 0.85, dashArray: "6 4" }).addTo(d.playback);
    const marker = L.circleMarker(latlngs[0], { radius: 9, color: "#ffffff", weight: 3, fillColor: "#0072B2", fillOpacity: 1 })
      .addTo(d.playback);
    d.map.fitBounds(L.latLngBounds(latlngs).pad(0.2), { maxZoom: d.config.max_zoom, animate: false });
    const slider = $("#pb-slider");
    slider.max = String(points.length - 1);
    slider.value = "0";
    $("#pb-controls").hidden = false;
    const show = (i) => {
      marker.setLatLng(latlngs[i]);
      $("#pb-time").textContent = formatDateTime(points[i].ts);
    };
    show(0);
    slider.oninput = () => {
      this.stopPlayback(); // scrubbing takes over from play
      show(Number(slider.value));
    };
    this.play = { timer: null, points, show };
    $("#pb-play").onclick = () => {
      if (this.play.timer) return this.stopPlayback();
      $("#pb-play").textContent = t("playback.pause");
      if (Number(slider.value) >= points.length - 1) slider.value = "0";
      this.play.timer = setInterval(() => {
        const i = Number(slider.value) + 1;
        if (i >= points.length) return this.stopPlayback();
        slider.value = String(i);
        show(i);
        if (i === points.length - 1) this.stopPlayback(); // at the end, not one tick later
      }, 200);
    };
  }

  stopPlayback() {
    if (this.play?.timer) clearInterval(this.play.timer);
    if (this.play) this.play.timer = null;
    const btn = $("#pb-play");
    if (btn) btn.textContent = t("playback.play");
  }

  // --- grid cell --------------------------------------------------------------------------
  showCell(f) {
    if (!f) return;
    const d = this.dash;
    const p = f.properties;
    const level = Object.hasOwn(WARNING, p.warning_level) ? p.warning_level : null;
    const box = this.openDetail("cell", f.id, [
      h("p", { class: "detail-title" }, p.name || f.id,
        level ? [" ", h("span", { class: `warn warn-${level}` }, t(`warning.${level}`))] : null),
      kv([
        [t("cell.team"), p.responsible_team
          ? (p.responsible_team.leader ? t("cell.team_led_by", { team: p.responsible_team.name, who: p.responsible_team.leader }) : p.responsible_team.name)
          : p.team || "—"],
        ...Object.entries(p.departments || {}).map(([line, dep]) => [d.org ? d.org.lineName(line) : line, dep.name]),
        [t("cell.warning"), level ? t(`warning.${level}`) : t("warning.none")],
        level && [t("cell.reason"), p.warning_reason || "—"],
        level && [t("cell.set_by"), `${p.warning_set_by || "—"} ${p.warning_set_at ? formatTime(p.warning_set_at) : ""}`],
      ]),
      h("div", { class: "warning-explain", "aria-live": "polite" }, t("detail.loading")),
    ], [d.can("org:write") ? h("button", { type: "button", id: "cell-org" }, t("cell.edit_org")) : null]);
    box.querySelector("#cell-org")?.addEventListener("click", () => d.org.open(f.id));
    // The rule or override behind the colour, its history and the override form (warnings.js).
    mountWarning(box.querySelector(".warning-explain"), f.id, {
      canWarn: d.can("cells:warn"),
      onChanged: async () => {
        const updated = await api(`/api/v1/grid-cells/${encodeURIComponent(f.id)}`);
        d.cells.upsert(updated);
        if (this.current?.type === "cell" && this.current.id === f.id) this.showCell(updated);
      },
    });
  }

  // --- POI import -------------------------------------------------------------------------
  async importPois(file) {
    if (!file) return;
    const d = this.dash;
    const out = $("#poi-import-result");
    out.className = "";
    out.textContent = t("detail.loading");
    const csv = file.name.toLowerCase().endsWith(".csv");
    const site = d.config.site || "default";
    try {
      const res = await api(`/api/v1/poi/import?site=${encodeURIComponent(site)}`, {
        method: "POST",
        body: await file.text(),
        headers: { "Content-Type": csv ? "text/csv" : "application/geo+json" },
      });
      out.textContent = t("poi.imported", { n: res.imported });
      out.className = "ok";
      d.pois.set(await fetchAll("/api/v1/poi", d.config.site ? { site: d.config.site } : {}));
    } catch (err) {
      // The hub's 422 says what to fix in the file (line, column); show it as it is.
      out.textContent = t("poi.import_failed", { reason: err.message });
      out.className = "error";
    }
  }

  // --- search -----------------------------------------------------------------------------
  bindSearch() {
    const input = $("#search-input");
    const list = $("#search-results");
    let timer = null;
    let active = -1;
    const close = () => {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      active = -1;
    };
    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.search(input.value.trim()), 200);
    });
    input.addEventListener("keydown", (ev) => {
      const options = [...list.querySelectorAll("[role=option]")];
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        if (!options.length) return;
        active = (active + (ev.key === "ArrowDown" ? 1 : -1) + options.length) % options.length;
        options.forEach((o, i) => o.setAttribute("aria-selected", String(i === active)));
        input.setAttribute("aria-activedescendant", options[active].id);
      } else if (ev.key === "Enter") {
        ev.preventDefault();
        const pick = options[active >= 0 ? active : 0];
        if (pick) pick.click();
      } else if (ev.key === "Escape") {
        close();
      }
    });
    input.addEventListener("blur", () => setTimeout(close, 200));
  }

  async search(q) {
    const d = this.dash;
    const list = $("#search-results");
    const input = $("#search-input");
    if (!q) {
      list.hidden = true;
      return;
    }
    const needle = q.toLowerCase();
    const results = [];
    for (const e of d.positions.entities.values()) {
      if (results.length >= 8) break;
      if (e.id.toLowerCase().includes(needle)) results.push({ type: "entity", id: e.id, label: e.id, sub: t(`entity.${e.kind}`) });
    }
    if (d.can("devices:read")) {
      try {
        const page = await api(`/api/v1/devices?${new URLSearchParams({ q, limit: "8" })}`);
        for (const dev of page.items) {
          results.push({ type: "device", id: dev.id, label: dev.name || dev.id, sub: `${t(`kind.${dev.kind}`)} · ${dev.id}` });
        }
      } catch (err) {
        console.warn("device search:", err);
      }
    }
    for (const { feature } of d.cells.cells.values()) {
      const name = feature.properties.name || feature.id;
      if (`${name} ${feature.id}`.toLowerCase().includes(needle)) results.push({ type: "cell", id: feature.id, label: name, sub: t("detail.cell") });
    }
    for (const f of d.pois.features) {
      if (`${f.properties.name} ${f.id}`.toLowerCase().includes(needle)) results.push({ type: "poi", id: f.id, label: f.properties.name, sub: t("detail.poi"), f });
    }
    const options = results.slice(0, 20).map((r, i) => {
      const li = h("li", { id: `sr-${i}`, role: "option", "aria-selected": "false" },
        h("strong", null, r.label), " ", h("span", { class: "muted" }, r.sub));
      li.addEventListener("mousedown", (ev) => ev.preventDefault());
      li.addEventListener("click", () => {
        list.hidden = true;
        this.pick(r);
      });
      return li;
    });
    fill(list, options.length ? options : h("li", { class: "muted" }, t("search.none")));
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  pick(r) {
    const d = this.dash;
    if (r.type === "entity") {
      const e = d.positions.entities.get(r.id);
      d.map.setView(d.toDisplay(e.lon, e.lat), Math.max(d.map.getZoom(), 17));
      this.showEntity(r.id);
    } else if (r.type === "device") {
      this.showDevice(r.id, true);
    } else if (r.type === "cell") {
      const c = d.cells.cells.get(r.id);
      d.map.fitBounds(c.layer.getBounds().pad(0.3));
      this.showCell(c.feature);
    } else if (r.type === "poi") {
      const [lon, lat] = r.f.geometry.coordinates;
      d.map.setView(d.toDisplay(lon, lat), Math.max(d.map.getZoom(), 17));
    }
  }
}
