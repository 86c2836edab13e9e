// Why a grid cell has its colour (GET /api/v1/grid-cells/{id}/warning): the rule or the manual
// override, the incidents and alert counts behind it; the cell's warning history; and the
// override form (a colour, a reason and how long it lasts; the hub's clock sets the expiry).
import { api } from "./api.js";
import { t, formatDateTime } from "./i18n.js";
import { fill, h } from "./dom.js";

const COLOURS = ["red", "orange", "yellow"];
const LEVELS = ["low", "medium", "high", "critical"];
export const OVERRIDE_HOURS = [1, 4, 24, 72, 168];
const HISTORY_PAGE = 20;

const cellPath = (id, rest) => `/api/v1/grid-cells/${encodeURIComponent(id)}/${rest}`;
const colourName = (level) => (COLOURS.includes(level) ? t(`warning.${level}`) : t("warning.none"));

function kv(rows) {
  return h("dl", { class: "kv" }, rows.filter(Boolean).map(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
}

function incidentItem(i) {
  const level = LEVELS.includes(i.level) ? t(`warning.level.${i.level}`) : i.level;
  return h("li", { class: "warning-incident" },
    h("span", { class: "incident-number" }, i.number), " · ", level, " · ", i.category, " · ",
    t("warning.age_h", { h: (i.age_min / 60).toFixed(1) }),
    i.overdue ? [" · ", h("span", { class: "overdue" }, t("warning.overdue"))] : null);
}

export function explanationView(e) {
  const source = e.source === "override" ? t("warning.source.override") : t("warning.source.rules");
  const shown = e.incidents || [];
  return [
    kv([
      e.level || e.source === "override" ? [t("warning.source"), source] : null,
      e.rule ? [t("warning.rule"), e.rule] : null,
      e.since ? [t("warning.since"), formatDateTime(e.since)] : null,
      e.override ? [t("workspace.override_reason"), e.override.reason] : null,
      e.override ? [t("workspace.override_by"), [e.override.by, " · ", formatDateTime(e.override.at)]] : null,
      e.override ? [t("warning.expires"), formatDateTime(e.override.expires_at)] : null,
      e.alerts ? [t("warning.alerts_label"), t("warning.alerts", { n: e.alerts.count, min: e.alerts.window_min })] : null,
    ]),
    shown.length ? [
      h("h3", null, t("warning.behind")),
      h("ul", { class: "warning-incidents" }, shown.map(incidentItem)),
      e.incident_count > shown.length ? h("p", { class: "muted" }, t("warning.more", { n: e.incident_count - shown.length })) : null,
    ] : null,
  ];
}

function historyItem(r) {
  return h("li", null,
    h("time", { datetime: r.ts }, formatDateTime(r.ts)), " · ",
    h("span", { class: COLOURS.includes(r.level) ? `warn warn-${r.level}` : "warn" }, colourName(r.level)), " · ",
    r.source === "override" ? t("warning.source.override") : t("warning.source.rules"),
    r.rule ? ` · ${r.rule}` : null,
    r.source === "override" && r.reason ? [" · ", h("q", null, r.reason)] : null,
    " · ", r.actor);
}

async function showHistory(box, cellId, cursor = null) {
  const q = new URLSearchParams({ limit: String(HISTORY_PAGE) });
  if (cursor) q.set("cursor", cursor);
  const page = await api(`${cellPath(cellId, "warning-history")}?${q}`);
  let list = box.querySelector(".warning-history");
  if (!cursor) {
    list = h("ol", { class: "warning-history", reversed: true });
    fill(box, h("h3", null, t("warning.history")), list);
  }
  box.querySelector(".history-more")?.remove();
  if (!page.items.length && !cursor) list.append(h("li", { class: "muted" }, t("warning.history_empty")));
  list.append(...page.items.map(historyItem));
  if (page.next_cursor) {
    const more = h("button", { type: "button", class: "history-more" }, t("warning.history_more"));
    more.addEventListener("click", () => showHistory(box, cellId, page.next_cursor));
    box.append(more);
  }
}

function overrideForm(cellId, current, onChanged) {
  const form = h("form", { class: "warn-form" },
    h("label", { for: "warn-level" }, t("cell.set_warning")),
    h("select", { id: "warn-level" },
      h("option", { value: "" }, t("warning.none")),
      COLOURS.map((w) => h("option", { value: w, selected: w === current }, t(`warning.${w}`)))),
    h("label", { for: "warn-reason" }, t("cell.reason")),
    h("input", { id: "warn-reason", minlength: 3, maxlength: 500, required: true }),
    h("label", { for: "warn-lasts" }, t("warning.lasts")),
    h("select", { id: "warn-lasts" },
      OVERRIDE_HOURS.map((n) => h("option", { value: n, selected: n === 24 }, t("warning.hours", { n })))),
    h("button", { type: "submit", class: "primary" }, t("cell.apply")),
    h("p", { id: "warn-error", class: "error", role: "alert" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api(cellPath(cellId, "warning-override"), {
        method: "PUT",
        body: {
          level: form.querySelector("#warn-level").value || "none",
          reason: form.querySelector("#warn-reason").value,
          lasts_min: Number(form.querySelector("#warn-lasts").value) * 60,
        },
      });
      await onChanged();
    } catch (err) {
      form.querySelector("#warn-error").textContent = err.message;
    }
  });
  return form;
}

// Fill `box` with the cell's explanation, a history button and (with cells:warn) the
// override form; `onChanged` re-reads the cell after an override is set or ended.
export async function mountWarning(box, cellId, { canWarn, onChanged }) {
  const history = h("div", { class: "warning-history-box" });
  let e;
  try {
    e = await api(cellPath(cellId, "warning"));
  } catch {
    fill(box, h("p", { class: "error", role: "alert" }, t("warning.explain_failed")));
    return;
  }
  const historyButton = h("button", { type: "button", class: "warning-history-open" }, t("warning.history"));
  historyButton.addEventListener("click", () => showHistory(history, cellId).catch((err) => {
    fill(history, h("p", { class: "error", role: "alert" }, err.message));
  }));
  let end = null;
  if (canWarn && e.source === "override") {
    end = h("button", { type: "button", class: "warning-end" }, t("warning.end_override"));
    end.addEventListener("click", async () => {
      await api(cellPath(cellId, "warning-override"), { method: "DELETE" });
      await onChanged();
    });
  }
  fill(box,
    explanationView(e),
    h("div", { class: "warning-buttons" }, historyButton, end),
    history,
    canWarn ? overrideForm(cellId, e.level, onChanged) : null);
}

// A cell's colour changed on the hub (live layer "warnings"): re-read the cell, recolour it
// on the map and refresh its popup if it is open.
export async function applyWarningEvent(dash, ev) {
  if (typeof ev.cell !== "string") return;
  try {
    const f = await api(`/api/v1/grid-cells/${encodeURIComponent(ev.cell)}`);
    dash.cells.upsert(f);
    const open = dash.panels?.current;
    if (open?.type === "cell" && open.id === ev.cell) dash.panels.showCell(f);
  } catch {
    // the cell was deleted meanwhile, or the session ended: the next full load sorts it out
  }
}
