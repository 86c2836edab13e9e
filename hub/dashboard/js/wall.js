// The wall display ("one screen for the whole district"): open incidents by cell, department
// and level, the overdue list, time to close, opened/closed per day, device availability and
// alert rates, drawn with Apache ECharts (npm, served from /ui/node_modules) and readable
// from across a room: every size derives from the viewport (css/wall.css), so 1920x1080 and
// 3840x2160 show the same layout at their own scale. Each chart has its figures beside it
// as a table for assistive technology, and every colour carries a text label.
import * as echarts from "/ui/node_modules/echarts/dist/echarts.esm.min.js";
import { api, fetchAll } from "./api.js";
import { fill, h } from "./dom.js";
import { formatTime, onLanguage, t } from "./i18n.js";
import { LiveStream } from "./live.js";
import { startPage } from "./page.js";

const $ = (sel) => document.querySelector(sel);
const REFRESH_MS = 30000;
const LIVE_DEBOUNCE_MS = 2000;
const TOP_N = 10; // bars per chart: the rest is summed as "others"

export const LEVELS = ["critical", "high", "medium", "low"];
// The severity palette of the map (js/layers.js SEVERITY), darkest text where it reads best.
const LEVEL_COLOUR = { critical: "#D55E00", high: "#E69F00", medium: "#F0E442", low: "#56B4E9" };
const STATUS_COLOUR = { online: "#009E73", degraded: "#E69F00", offline: "#6B7280", unknown: "#374151" };
const STATUSES = ["online", "degraded", "offline", "unknown"];
const INK = "#e8edf3";
const GRID_LINE = "#2f3d4f";

function rem() {
  return parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
}

function hours(seconds) {
  return seconds === null || seconds === undefined ? null : Math.round((seconds / 3600) * 10) / 10;
}

// The top `n` items by value, the rest summed as one "others" bar (no silent cap).
function topWithOthers(rows, n) {
  const sorted = [...rows].sort((a, b) => b.value - a.value);
  if (sorted.length <= n) return sorted;
  const rest = sorted.slice(n - 1);
  return [...sorted.slice(0, n - 1), {
    key: "__others", name: t("wall.others", { n: rest.length }), value: rest.reduce((s, r) => s + r.value, 0),
  }];
}

// Figures beside a chart: <tr data-key><th>name</th><td data-value>…</td>…</tr>.
function figuresTable(table, columns, rows) {
  fill(table,
    h("thead", null, h("tr", null, h("th", { scope: "col" }, columns[0]), columns.slice(1).map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", null, rows.map((r) => h("tr", { "data-key": r.key ?? "" },
      h("th", { scope: "row" }, r.name),
      r.values.map((v) => h("td", { "data-value": v === null ? "" : String(v) }, v === null ? t("wall.not_reported") : String(v)))))));
}

class Wall {
  constructor(config, me) {
    this.config = config;
    this.perms = new Set(me.permissions);
    this.charts = new Map();
    this.data = null;
    this.timer = null;
    this.pending = null;
  }

  can(p) {
    return this.perms.has(p);
  }

  chart(id) {
    let chart = this.charts.get(id);
    if (!chart) {
      chart = echarts.init($(`#${id} .chart`), null, { renderer: "canvas" });
      this.charts.set(id, chart);
    }
    return chart;
  }

  base() {
    const fs = rem();
    return {
      animation: false, // a wall redraws every refresh; motion there only distracts
      textStyle: { color: INK, fontSize: fs },
      grid: { left: fs * 0.5, right: fs * 2.5, top: fs * 0.8, bottom: fs * 0.5, containLabel: true },
      tooltip: { show: false },
    };
  }

  barOptions(rows, colour) {
    const fs = rem();
    const ordered = [...rows].reverse(); // largest at the top
    return {
      ...this.base(),
      xAxis: { type: "value", minInterval: 1, axisLabel: { color: INK, fontSize: fs * 0.8 }, splitLine: { lineStyle: { color: GRID_LINE } } },
      yAxis: { type: "category", data: ordered.map((r) => r.name), axisLabel: { color: INK, fontSize: fs * 0.85, width: fs * 9, overflow: "truncate" } },
      series: [{
        type: "bar", data: ordered.map((r) => ({ value: r.value, itemStyle: { color: r.colour || colour } })),
        label: { show: true, position: "right", color: INK, fontSize: fs * 0.9, fontWeight: "bold" },
        barMaxWidth: fs * 1.6,
      }],
    };
  }

  async load() {
    const site = this.config.site ? { site: this.config.site } : {};
    const q = new URLSearchParams(site);
    const jobs = {
      wall: api(`/api/v1/ui/wall?${q}`),
      cells: api(`/api/v1/incident-stats?${new URLSearchParams({ ...site, by: "cell" })}`),
      departments: api(`/api/v1/incident-stats?${new URLSearchParams({ ...site, by: "department" })}`),
      devices: this.can("devices:read") ? fetchAll("/api/v1/ui/devices", site) : Promise.resolve(null),
    };
    const names = Object.keys(jobs);
    const settled = await Promise.allSettled(Object.values(jobs));
    const data = {};
    settled.forEach((r, i) => {
      if (r.status === "fulfilled") data[names[i]] = r.value;
      else console.error(`wall ${names[i]}:`, r.reason);
    });
    this.data = data;
    this.render();
  }

  render() {
    const d = this.data;
    if (!d) return;
    if (d.wall) {
      this.renderKpis(d);
      this.renderLevels(d.wall.open_by_level);
      this.renderOverdue(d.wall.overdue);
      this.renderTrend(d.wall.trend);
      this.renderAlerts(d.wall.alert_rate);
      $("#wall-updated").textContent = t("wall.updated", { time: formatTime(d.wall.generated_at) });
      $("#wall-updated").dateTime = d.wall.generated_at;
    }
    if (d.cells) this.renderOpenBy("card-cells", d.cells.items, "#56B4E9", t("wall.col.cell"));
    if (d.departments) {
      this.renderOpenBy("card-departments", d.departments.items, "#009E73", t("wall.col.department"));
      this.renderTimeToClose(d.departments.items);
    }
    this.renderDevices(d.devices);
    $("#wall").setAttribute("aria-busy", "false");
  }

  kpi(id, label, value, extra) {
    fill($(`#${id}`),
      h("span", { class: "kpi-value", "data-value": value === null ? "" : String(value) },
        value === null ? t("wall.not_reported") : String(value), extra ? h("small", null, extra) : null),
      h("span", { class: "kpi-label" }, label));
  }

  renderKpis(d) {
    const byLevel = d.wall.open_by_level;
    const open = LEVELS.reduce((s, l) => s + (byLevel[l] || 0), 0);
    this.kpi("kpi-open", t("wall.kpi.open"), open);
    this.kpi("kpi-critical", t("wall.kpi.critical"), byLevel.critical || 0);
    this.kpi("kpi-overdue", t("wall.kpi.overdue"), d.wall.overdue.total);
    if (d.devices) {
      const online = d.devices.filter((f) => f.properties.status === "online").length;
      this.kpi("kpi-devices", t("wall.kpi.devices"), online, ` / ${d.devices.length}`);
    } else {
      this.kpi("kpi-devices", t("wall.kpi.devices"), null);
    }
    const counts = d.wall.alert_rate.counts;
    this.kpi("kpi-alerts", t("wall.kpi.alerts_hour"), counts[counts.length - 1]);
  }

  renderOpenBy(id, items, colour, column) {
    const rows = items.filter((i) => i.open > 0)
      .map((i) => ({ key: i.key, name: i.key === null ? t("wall.none") : i.name, value: i.open, overdue: i.overdue }));
    const shown = topWithOthers(rows, TOP_N);
    this.chart(id).setOption(this.barOptions(shown, colour), true);
    figuresTable($(`#${id} .figures`), [column, t("wall.col.open"), t("wall.col.overdue")],
      rows.map((r) => ({ key: r.key, name: r.name, values: [r.value, r.overdue] })));
  }

  renderLevels(byLevel) {
    const rows = LEVELS.map((l) => ({ key: l, name: t(`severity.${l}`), value: byLevel[l] || 0, colour: LEVEL_COLOUR[l] }));
    this.chart("card-levels").setOption(this.barOptions(rows, null), true);
    figuresTable($("#card-levels .figures"), [t("wall.col.level"), t("wall.col.open")],
      rows.map((r) => ({ key: r.key, name: r.name, values: [r.value] })));
  }

  renderOverdue(overdue) {
    const items = overdue.items.map((i) => h("li", { class: `overdue-item level-${LEVELS.includes(i.level) ? i.level : "low"}`, "data-id": i.id },
      h("span", { class: "overdue-level" }, t(`severity.${LEVELS.includes(i.level) ? i.level : "low"}`)),
      h("span", { class: "overdue-number" }, i.number),
      h("span", { class: "overdue-title" }, i.title),
      h("span", { class: "overdue-cell" }, i.cell_name || i.cell_id || t("wall.none")),
      h("span", { class: "overdue-for", "data-value": String(i.overdue_s) }, t("wall.overdue_for", { h: hours(i.overdue_s) }))));
    const more = overdue.total - overdue.items.length;
    fill($("#card-overdue .overdue-list"),
      items.length ? items : h("li", { class: "overdue-none" }, t("wall.overdue_none")),
      more > 0 ? h("li", { class: "overdue-more", "data-value": String(more) }, t("wall.more", { n: more })) : null);
    $("#card-overdue").dataset.total = String(overdue.total);
  }

  renderTrend(trend) {
    const fs = rem();
    const days = trend.days.map((d) => d.slice(5)); // MM-DD: the year is the wall's present
    this.chart("card-trend").setOption({
      ...this.base(),
      legend: { top: 0, right: 0, itemWidth: fs * 1.6, itemHeight: fs * 0.8, textStyle: { color: INK, fontSize: fs * 0.85 } },
      grid: { ...this.base().grid, top: fs * 2.2 },
      xAxis: { type: "category", data: days, axisLabel: { color: INK, fontSize: fs * 0.75 } },
      yAxis: { type: "value", minInterval: 1, axisLabel: { color: INK, fontSize: fs * 0.8 }, splitLine: { lineStyle: { color: GRID_LINE } } },
      series: [
        { name: t("wall.opened"), type: "line", data: trend.opened, lineStyle: { width: fs * 0.2 }, symbolSize: fs * 0.5, color: "#E69F00" },
        // Dashed as well as coloured: the two lines differ without colour.
        { name: t("wall.closed"), type: "line", data: trend.closed, lineStyle: { width: fs * 0.2, type: "dashed" }, symbolSize: fs * 0.5, color: "#56B4E9" },
      ],
    }, true);
    figuresTable($("#card-trend .figures"), [t("wall.col.day"), t("wall.opened"), t("wall.closed")],
      trend.days.map((day, i) => ({ key: day, name: day, values: [trend.opened[i], trend.closed[i]] })));
  }

  renderTimeToClose(items) {
    const rows = items.filter((i) => i.time_to_close.median_s !== null)
      .map((i) => ({ key: i.key, name: i.key === null ? t("wall.none") : i.name, value: hours(i.time_to_close.median_s) }));
    const opts = this.barOptions(topWithOthers(rows, TOP_N).filter((r) => r.key !== "__others"), "#CC79A7");
    opts.series[0].label.formatter = (p) => t("wall.hours", { n: p.value });
    this.chart("card-close").setOption(opts, true);
    figuresTable($("#card-close .figures"), [t("wall.col.department"), t("wall.col.median_h")],
      rows.map((r) => ({ key: r.key, name: r.name, values: [r.value] })));
  }

  renderDevices(features) {
    const kinds = ["camera", "lidar", "wristband", "glasses"];
    const counts = Object.fromEntries(kinds.map((k) => [k, Object.fromEntries(STATUSES.map((s) => [s, 0]))]));
    for (const f of features || []) {
      const p = f.properties;
      if (!counts[p.kind]) continue;
      const status = p.status === "stopped" ? "offline" : STATUSES.includes(p.status) ? p.status : "unknown";
      counts[p.kind][status] += 1;
    }
    const fs = rem();
    const shownKinds = kinds.filter((k) => STATUSES.some((s) => counts[k][s] > 0));
    this.chart("card-devices").setOption({
      ...this.base(),
      legend: { top: 0, right: 0, itemWidth: fs * 1.2, itemHeight: fs * 0.8, textStyle: { color: INK, fontSize: fs * 0.8 } },
      grid: { ...this.base().grid, top: fs * 2.2 },
      xAxis: { type: "value", minInterval: 1, axisLabel: { color: INK, fontSize: fs * 0.8 }, splitLine: { lineStyle: { color: GRID_LINE } } },
      yAxis: { type: "category", data: shownKinds.map((k) => t(`kind.${k}`)), axisLabel: { color: INK, fontSize: fs * 0.85 } },
      series: STATUSES.map((s) => ({
        name: t(`status.${s}`), type: "bar", stack: "devices", color: STATUS_COLOUR[s],
        data: shownKinds.map((k) => counts[k][s]),
        label: { show: true, color: s === "degraded" ? "#111111" : "#ffffff", fontSize: fs * 0.8, formatter: (p) => (p.value ? p.value : "") },
      })),
    }, true);
    if (!features) {
      figuresTable($("#card-devices .figures"), [t("wall.col.kind")], []);
      return;
    }
    figuresTable($("#card-devices .figures"), [t("wall.col.kind"), ...STATUSES.map((s) => t(`status.${s}`))],
      shownKinds.map((k) => ({ key: k, name: t(`kind.${k}`), values: STATUSES.map((s) => counts[k][s]) })));
  }

  renderAlerts(rate) {
    const fs = rem();
    const labels = rate.hours.map((iso) => formatTime(iso).slice(0, 5));
    this.chart("card-alerts").setOption({
      ...this.base(),
      xAxis: { type: "category", data: labels, axisLabel: { color: INK, fontSize: fs * 0.7 } },
      yAxis: { type: "value", minInterval: 1, axisLabel: { color: INK, fontSize: fs * 0.8 }, splitLine: { lineStyle: { color: GRID_LINE } } },
      series: [{ type: "bar", data: rate.counts, color: "#D55E00", barMaxWidth: fs * 1.2 }],
    }, true);
    figuresTable($("#card-alerts .figures"), [t("wall.col.hour"), t("wall.col.alerts")],
      rate.hours.map((iso, i) => ({ key: iso, name: labels[i], values: [rate.counts[i]] })));
  }

  // A burst of live events costs one reload, LIVE_DEBOUNCE_MS after the first.
  soon() {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = null;
      this.load().catch((err) => console.error("wall:", err));
    }, LIVE_DEBOUNCE_MS);
  }

  start() {
    this.timer = setInterval(() => this.load().catch((err) => console.error("wall:", err)), REFRESH_MS);
    window.addEventListener("resize", () => {
      for (const chart of this.charts.values()) chart.resize();
      this.render(); // font sizes follow the viewport
    });
    onLanguage(() => this.render());
    if (!this.can("live:read")) return;
    const layers = ["alerts", "devices", "warnings"].filter((l) => l !== "devices" || this.can("devices:read"));
    this.live = new LiveStream({
      layers,
      onEvent: () => this.soon(),
      onState: (state) => {
        const el = $("#wall-conn");
        el.dataset.state = state;
        el.textContent = t(`conn.${state}`);
      },
      onResync: () => this.soon(),
    });
    this.live.start();
  }
}

async function boot() {
  const started = await startPage({ signin: "#wall-signin", main: "#wall" });
  if (!started) return;
  const { me, config } = started;
  $("#wall-site").textContent = config.site || t("header.all_sites");
  const wall = new Wall(config, me);
  await wall.load();
  wall.start();
}

boot().catch((err) => console.error("wall:", err));
