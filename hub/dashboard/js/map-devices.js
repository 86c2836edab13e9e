// The device summary beside the map: how many devices are online, degraded, offline or never
// seen, and per kind the health figures their last heartbeats reported (mean frame rate and
// inference time, unsent alerts, hottest CPU). A figure no device of the kind reports reads
// "not reported", never 0: a camera that sends no fps has not got 0 fps.
import { fill, h } from "./dom.js";
import { t } from "./i18n.js";
import { deviceStatus } from "./layers.js";

export const STATUSES = ["online", "degraded", "offline", "unknown"];
const KINDS = ["camera", "lidar", "wristband", "glasses"];

// [figure, how it combines over a kind's devices, decimals]
const FIGURES = [
  ["fps", "mean", 1],
  ["inference_ms", "mean", 0],
  ["outbox_depth", "sum", 0],
  ["cpu_temp_c", "max", 0],
];

function combine(values, how) {
  if (!values.length) return null;
  if (how === "sum") return values.reduce((a, b) => a + b, 0);
  if (how === "max") return Math.max(...values);
  return values.reduce((a, b) => a + b, 0) / values.length;
}

// Counts and figures from the /api/v1/ui/devices features (pure: tested through the page).
export function summarise(features) {
  const total = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  const kinds = new Map();
  for (const f of features) {
    const p = f.properties || {};
    const status = deviceStatus(p.status) === "stopped" ? "offline" : deviceStatus(p.status);
    total[status] += 1;
    const kind = KINDS.includes(p.kind) ? p.kind : "other";
    if (!kinds.has(kind)) kinds.set(kind, { counts: Object.fromEntries(STATUSES.map((s) => [s, 0])), health: [] });
    const k = kinds.get(kind);
    k.counts[status] += 1;
    // Figures from devices that are up now: an offline device's last heartbeat is history.
    if (p.health && (status === "online" || status === "degraded")) k.health.push(p.health);
  }
  const rows = [];
  for (const kind of [...KINDS, "other"]) {
    const k = kinds.get(kind);
    if (!k) continue;
    const figures = {};
    for (const [name, how] of FIGURES) {
      const values = k.health.map((x) => x[name]).filter((v) => typeof v === "number" && Number.isFinite(v));
      figures[name] = combine(values, how);
    }
    rows.push({ kind, counts: k.counts, figures });
  }
  return { total, rows };
}

function figureCell(value, decimals) {
  if (value === null) return h("td", { class: "not-reported", "data-value": "" }, t("map.devices.not_reported"));
  return h("td", { "data-value": String(value) }, value.toFixed(decimals));
}

export class DeviceSummary {
  constructor(root) {
    this.root = root;
    this.features = [];
  }

  set(features) {
    this.features = features;
    this.render();
  }

  render() {
    const { total, rows } = summarise(this.features);
    const line = h("p", { class: "device-totals" }, STATUSES.flatMap((s, i) => [
      i ? " " : "",
      h("span", { class: `device-total device-total-${s}`, "data-status": s, "data-value": String(total[s]) },
        h("i", { class: `dev-dot dev-${s}`, "aria-hidden": "true" }), " ",
        t(`status.${s}`), ": ", h("strong", null, String(total[s]))),
    ]));
    const head = h("tr", null, h("th", { scope: "col" }, t("map.devices.kind")),
      STATUSES.map((s) => h("th", { scope: "col" }, t(`status.${s}`))),
      FIGURES.map(([name]) => h("th", { scope: "col" }, t(`map.devices.${name}`))));
    const body = rows.map((r) => h("tr", { "data-kind": r.kind },
      h("th", { scope: "row" }, r.kind === "other" ? t("map.devices.other") : t(`kind.${r.kind}`)),
      STATUSES.map((s) => h("td", { "data-status": s, "data-value": String(r.counts[s]) }, String(r.counts[s]))),
      FIGURES.map(([name, , decimals]) => {
        const cell = figureCell(r.figures[name], decimals);
        cell.dataset.figure = name;
        return cell;
      })));
    // A <details>: the totals always show, the per-kind table opens on demand, so the side
    // column keeps its room for the alert detail and the feed.
    fill(this.root,
      h("summary", null, h("h2", { id: "device-summary-title" }, t("map.devices.title")), line),
      rows.length
        ? h("div", { class: "table-scroll" }, h("table", { class: "device-health" },
          h("caption", { class: "sr-only" }, t("map.devices.caption")), h("thead", null, head), h("tbody", null, body)))
        : h("p", { class: "muted" }, t("map.devices.none")));
  }
}
