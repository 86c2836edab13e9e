// The incident workspace: a drawer over the map's left side with the incident list (paged and
// filtered by the hub, never in the page) and one incident's detail: its state and the moves the
// state machine allows, assignment to the cell team's members or to an officer, comments,
// attachments, the timeline, the linked alerts with their evidence ("show on map" pans to them)
// and why the incident's cell has its warning colour. Controls appear only with the permission
// the hub checks for them; the hub refuses anyway, and its refusal is shown as it says it.
import * as L from "/ui/node_modules/leaflet/dist/leaflet-src.esm.js";
import { api, ApiError, fetchAll } from "./api.js";
import { t, formatDateTime, language } from "./i18n.js";
import { fill, h } from "./dom.js";
import { severityBadge } from "./layers.js";
import { mountWarning } from "./warnings.js";
import { DispatchPanel, dispatchEventText } from "./dispatch.js";

const PAGE_SIZE = 25;
const STATES = ["new", "assigned", "in_progress", "resolved", "closed"];
const OPEN_STATES = ["new", "assigned", "in_progress"];
const LEVELS = ["low", "medium", "high", "critical"];
// Linked alerts whose detail (title, place, evidence) is fetched: the rest are listed plainly.
const ALERTS_DETAILED = 20;
const LIVE_REFRESH_MS = 800;

// The moves hub/incidents/model.py TRANSITIONS allows from each state, in the order offered.
const ACTIONS = {
  new: ["assign", "close"],
  assigned: ["start", "resolve", "assign", "close"],
  in_progress: ["resolve", "assign"],
  resolved: ["close", "reopen"],
  closed: ["reopen"],
};
// The text each move sends: resolve and reopen must say why (the hub refuses an empty one).
const TEXT_FIELD = { resolve: "text", close: "text", reopen: "reason" };
const TEXT_REQUIRED = new Set(["resolve", "reopen"]);

const path = (id, rest = "") => `/api/v1/incidents/${encodeURIComponent(id)}${rest ? `/${rest}` : ""}`;
const known = (list, v) => (list.includes(v) ? v : null);

function kv(rows) {
  return h("dl", { class: "kv" }, rows.filter(Boolean).map(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
}

export function stateLabel(state) {
  const s = known(STATES, state);
  return h("span", { class: `inc-state inc-state-${s || "unknown"}` }, s ? t(`workspace.state.${s}`) : String(state));
}

export function levelLabel(level) {
  const l = known(LEVELS, level);
  return h("span", { class: `inc-level inc-level-${l || "unknown"}` }, l ? t(`warning.level.${l}`) : String(level));
}

export class IncidentWorkspace {
  constructor(dash) {
    this.dash = dash;
    this.root = document.getElementById("incidents");
    this.filters = { state: "open", department: "", cell: "", assignee: "" };
    this.cursors = [null]; // cursor of each page seen, so "previous" needs no reverse paging
    this.pageIndex = 0;
    this.items = [];
    this.nextCursor = null;
    this.view = null; // "list" | "detail"
    this.incident = null;
    this.departments = [];
    this.categories = [];
    this.pending = null; // the move whose form is open
    this.message = null; // {text, cls, reload}
    this.highlight = L.layerGroup().addTo(dash.map);
    // Escape leaves the workspace, unless the enlarged snapshot takes it (the dialog closes).
    this.root.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && !this.dialog.open) this.close();
    });
    this.refreshTimer = null;
    this.dialog = this.evidenceDialog();
    this.dispatch = new DispatchPanel(dash);
  }

  can(p) {
    return this.dash.can(p);
  }

  // --- reference data ---------------------------------------------------------------------
  async loadVocabulary() {
    if (this.vocabularyLoaded) return;
    this.vocabularyLoaded = true;
    const site = this.dash.config.site ? { site: this.dash.config.site } : {};
    const jobs = [];
    if (this.can("org:read")) jobs.push(fetchAll("/api/v1/departments", site).then((d) => { this.departments = d; }));
    if (this.can("workflow:read")) jobs.push(api("/api/v1/workflow").then((w) => { this.categories = w.categories; }));
    for (const r of await Promise.allSettled(jobs)) if (r.status === "rejected") console.warn("incident vocabulary:", r.reason);
  }

  categoryName(id) {
    const c = this.categories.find((x) => x.id === id);
    if (!c) return id;
    return c.names?.[language()] || c.names?.en || id;
  }

  departmentName(id) {
    if (!id) return t("workspace.unrouted");
    return this.departments.find((d) => d.id === id)?.name ?? id;
  }

  cellName(id) {
    if (!id) return "—";
    return this.dash.cells?.cells.get(id)?.feature.properties.name || id;
  }

  // --- the drawer -------------------------------------------------------------------------
  shell(body) {
    const close = h("button", { type: "button", class: "close inc-close", "aria-label": t("workspace.close"), title: t("workspace.close") }, "×");
    close.addEventListener("click", () => this.close());
    this.root.hidden = false;
    fill(this.root,
      h("div", { class: "detail-head" }, h("h2", { id: "incidents-heading" }, t("workspace.title")), close),
      h("div", { class: "inc-body" }, body));
    return this.root;
  }

  close() {
    this.root.hidden = true;
    this.view = null;
    this.incident = null;
    this.highlight.clearLayers();
    document.getElementById("incidents-open")?.focus();
  }

  rerender() {
    if (this.view === "list") this.renderList();
    else if (this.view === "detail" && this.incident) this.renderDetail(this.incident);
  }

  // --- list -------------------------------------------------------------------------------
  async open() {
    await this.loadVocabulary();
    this.view = "list";
    await this.loadPage(this.pageIndex);
    this.root.focus(); // a keyboard user lands in the drawer (a live refresh never moves focus)
  }

  query(cursor) {
    const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (this.dash.config.site) q.set("site", this.dash.config.site);
    const f = this.filters;
    if (f.state === "open") for (const s of OPEN_STATES) q.append("state", s);
    else if (known(STATES, f.state)) q.set("state", f.state);
    if (f.department) q.set("department", f.department);
    if (f.cell) q.set("cell", f.cell);
    if (f.assignee) q.set("assignee", f.assignee);
    if (cursor) q.set("cursor", cursor);
    return q;
  }

  async loadPage(index) {
    let page;
    try {
      page = await api(`/api/v1/incidents?${this.query(this.cursors[index])}`);
    } catch (err) {
      this.items = [];
      this.nextCursor = null;
      this.message = { text: t("workspace.load_failed", { reason: err.message }), cls: "error" };
      this.renderList();
      return;
    }
    this.pageIndex = index;
    this.items = page.items;
    this.nextCursor = page.next_cursor;
    this.cursors.length = index + 1;
    if (page.next_cursor) this.cursors.push(page.next_cursor);
    this.message = null;
    if (this.view === "list") this.renderList();
  }

  filterForm() {
    const f = this.filters;
    const select = (id, label, options) => [h("label", { for: id }, label), h("select", { id, class: "inc-filter" }, options)];
    const opt = (value, text, chosen) => h("option", { value, selected: value === chosen }, text);
    const cells = [...(this.dash.cells?.cells.values() || [])].map((c) => c.feature)
      .sort((a, b) => String(a.properties.name).localeCompare(String(b.properties.name)));
    const form = h("form", { id: "inc-filters", class: "inc-filters", role: "search" },
      select("inc-f-state", t("workspace.filter.state"), [
        opt("open", t("workspace.filter.open"), f.state), opt("", t("workspace.filter.any"), f.state),
        STATES.map((s) => opt(s, t(`workspace.state.${s}`), f.state))]),
      this.departments.length ? select("inc-f-department", t("workspace.filter.department"), [
        opt("", t("workspace.filter.any"), f.department),
        this.departments.map((d) => opt(d.id, d.name, f.department))]) : null,
      cells.length ? select("inc-f-cell", t("workspace.filter.cell"), [
        opt("", t("workspace.filter.any"), f.cell),
        cells.map((c) => opt(c.id, c.properties.name || c.id, f.cell))]) : null,
      h("label", { for: "inc-f-assignee" }, t("workspace.filter.assignee")),
      h("input", { id: "inc-f-assignee", value: f.assignee, maxlength: 64, autocomplete: "off", placeholder: t("workspace.filter.assignee_hint") }),
      h("button", { type: "submit", class: "primary" }, t("workspace.filter.apply")));
    const read = () => {
      this.filters = {
        state: form.querySelector("#inc-f-state").value,
        department: form.querySelector("#inc-f-department")?.value ?? "",
        cell: form.querySelector("#inc-f-cell")?.value ?? "",
        assignee: form.querySelector("#inc-f-assignee").value.trim(),
      };
      this.cursors = [null];
      this.loadPage(0);
    };
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      read();
    });
    for (const sel of form.querySelectorAll("select")) sel.addEventListener("change", read);
    return form;
  }

  listItem(i) {
    const open = h("button", { type: "button", class: "inc-open", "data-id": i.id },
      h("span", { class: "inc-row-head" }, h("span", { class: "inc-number" }, i.number), " ", levelLabel(i.level), " ", stateLabel(i.state)),
      h("span", { class: "inc-title" }, i.title),
      h("span", { class: "inc-meta" }, `${this.cellName(i.cell_id)} · ${this.categoryName(i.category)} · `,
        i.assignee ? t("workspace.assigned_to", { who: i.assignee }) : t("workspace.unassigned"), " · ",
        h("time", { datetime: i.created_at }, formatDateTime(i.created_at))));
    open.addEventListener("click", () => this.openIncident(i.id));
    return h("li", { class: `inc-item inc-item-${known(LEVELS, i.level) || "unknown"}` }, open);
  }

  renderList() {
    this.view = "list";
    this.highlight.clearLayers();
    const prev = h("button", { type: "button", id: "inc-prev", disabled: this.pageIndex === 0 }, t("workspace.prev"));
    const next = h("button", { type: "button", id: "inc-next", disabled: !this.nextCursor }, t("workspace.next"));
    prev.addEventListener("click", () => this.loadPage(this.pageIndex - 1));
    next.addEventListener("click", () => this.loadPage(this.pageIndex + 1));
    const focused = document.activeElement?.id;
    this.shell([
      this.filterForm(),
      this.message ? h("p", { class: `inc-message ${this.message.cls}`, role: "alert" }, this.message.text) : null,
      h("ol", { id: "inc-list", class: "inc-list" }, this.items.length
        ? this.items.map((i) => this.listItem(i))
        : h("li", { class: "muted" }, t("workspace.none"))),
      h("nav", { class: "inc-pager", "aria-label": t("workspace.pages") },
        prev, h("span", { class: "muted", id: "inc-page" }, t("workspace.page", { n: this.pageIndex + 1 })), next),
    ]);
    if (focused) this.root.querySelector(`#${CSS.escape(focused)}`)?.focus();
  }

  // --- detail -----------------------------------------------------------------------------
  async openIncident(id) {
    await this.showIncident(id);
    // Asked for by the user: the drawer takes the focus. A live refresh (reload) never does.
    if (this.view === "detail" && !this.root.contains(document.activeElement)) this.root.focus();
  }

  async showIncident(id) {
    await this.loadVocabulary();
    let d;
    try {
      d = await api(path(id));
    } catch (err) {
      this.view = "list";
      this.message = { text: t("workspace.load_failed", { reason: err.message }), cls: "error" };
      this.renderList();
      return;
    }
    if (this.incident?.id !== d.id) {
      this.pending = null;
      this.message = null;
      this.alertDetails = new Map();
    }
    this.view = "detail";
    this.incident = d;
    await this.loadAlertDetails(d);
    this.renderDetail(d);
  }

  async reload() {
    if (this.incident) await this.showIncident(this.incident.id);
  }

  // Title, place and evidence of the first linked alerts (the incident detail lists only ids).
  async loadAlertDetails(d) {
    if (!this.can("alerts:read")) return;
    const wanted = d.alerts.slice(-ALERTS_DETAILED).filter((a) => !this.alertDetails.has(a.id));
    const got = await Promise.allSettled(wanted.map((a) => api(`/api/v1/alerts/${encodeURIComponent(a.id)}`)));
    for (const r of got) if (r.status === "fulfilled") this.alertDetails.set(r.value.id, r.value);
  }

  // What this user may do now: the state machine's moves, less those the role does not hold.
  actions(d) {
    const me = this.dash.me.username;
    const manage = this.can("incidents:manage");
    const own = this.can("incidents:work") && (manage || d.assignee === me);
    return (ACTIONS[d.state] || []).filter((a) => {
      if (a === "start" || a === "resolve") return own;
      return manage;
    });
  }

  renderDetail(d) {
    const keep = this.keepTyped();
    const back = h("button", { type: "button", id: "inc-back" }, t("workspace.back"));
    back.addEventListener("click", () => {
      this.incident = null;
      this.view = "list";
      this.loadPage(this.pageIndex);
    });
    const overdue = d.deadline_at && OPEN_STATES.includes(d.state) && new Date(d.deadline_at) < new Date();
    const box = this.shell([
      h("div", { class: "inc-nav" }, back),
      h("article", { class: "inc-detail", "aria-labelledby": "inc-title", "data-id": d.id, "data-version": d.version },
        h("p", { class: "detail-title" }, h("span", { class: "inc-number" }, d.number), " ", levelLabel(d.level), " ", stateLabel(d.state)),
        h("h3", { id: "inc-title", class: "inc-title" }, d.title),
        kv([
          [t("workspace.category"), this.categoryName(d.category)],
          [t("workspace.source"), t(`workspace.source.${known(["alert", "report", "manual"], d.source) || "manual"}`)],
          [t("workspace.cell"), this.cellName(d.cell_id)],
          [t("workspace.department"), this.departmentName(d.department_id)],
          [t("workspace.assignee"), d.assignee || t("workspace.unassigned")],
          [t("workspace.deadline"), d.deadline_at
            ? [h("time", { datetime: d.deadline_at }, formatDateTime(d.deadline_at)), overdue ? [" ", h("span", { class: "overdue" }, t("warning.overdue"))] : null]
            : "—"],
          [t("workspace.opened"), [h("time", { datetime: d.created_at }, formatDateTime(d.created_at)), ` · ${d.opened_by}`]],
          d.alert_count ? [t("workspace.alert_count"), String(d.alert_count)] : null,
        ]),
        d.description ? h("p", { class: "inc-description" }, d.description) : null,
        d.lon != null ? this.mapButton(d.lon, d.lat, "inc-show-incident") : null,
        this.actionBar(d),
        h("p", { id: "inc-error", class: `inc-message ${this.message?.cls || ""}`, role: "alert" },
          this.message?.text || "", this.message?.reload ? [" ", this.reloadButton()] : null),
        this.dispatch.node(d),
        d.cell_id && this.can("cells:read") ? this.warningSection(d) : null,
        this.alertsSection(d),
        this.attachmentsSection(d),
        this.commentForm(d),
        this.timelineSection(d)),
    ]);
    this.bindDetail(box, d);
    keep(box);
  }

  // Typed text and focus survive a re-render (a live update lands while somebody writes).
  keepTyped() {
    const values = {};
    for (const el of this.root.querySelectorAll("textarea[id], input[id]:not([type=file]), select[id]")) values[el.id] = el.value;
    const focused = document.activeElement && this.root.contains(document.activeElement) ? document.activeElement.id : null;
    return (box) => {
      for (const [id, v] of Object.entries(values)) {
        const el = box.querySelector(`#${CSS.escape(id)}`);
        if (el && el.tagName !== "SELECT" && v) el.value = v;
        else if (el && el.tagName === "SELECT" && [...el.options].some((o) => o.value === v)) el.value = v;
      }
      if (focused) box.querySelector(`#${CSS.escape(focused)}`)?.focus();
    };
  }

  reloadButton() {
    const b = h("button", { type: "button", id: "inc-reload" }, t("workspace.reload"));
    b.addEventListener("click", () => {
      this.message = null;
      this.pending = null;
      this.reload();
    });
    return b;
  }

  actionBar(d) {
    const moves = this.actions(d);
    if (!moves.length) return null;
    return h("div", { class: "inc-actions" },
      h("div", { class: "inc-buttons" }, moves.map((a) => h("button", {
        type: "button", class: `inc-action${this.pending === a ? " is-pending" : ""}`, "data-action": a,
        "aria-expanded": a === "start" ? null : String(this.pending === a),
      }, t(`workspace.action.${a}`)))),
      this.pending === "assign" ? this.assignForm(d) : null,
      TEXT_FIELD[this.pending] ? this.textForm(this.pending) : null);
  }

  assignForm(d) {
    const options = [h("option", { value: "" }, t("workspace.assign.choose"))];
    const group = (label, people) => (people.length ? h("optgroup", { label }, people.map((p) => h("option", {
      value: p.username, selected: p.username === d.assignee,
    }, p.display_name ? `${p.display_name} (${p.username})` : p.username))) : null);
    const list = this.assigneesFor(d);
    if (list) {
      options.push(group(t("workspace.assign.team"), list.team), group(t("workspace.assign.officers"), list.officers));
    }
    return h("form", { id: "inc-assign-form", class: "inc-form" },
      h("label", { for: "inc-assignee" }, t("workspace.assign.to")),
      h("select", { id: "inc-assignee", required: true }, options),
      list && !list.team.length && !list.officers.length ? h("p", { class: "muted" }, t("workspace.assign.nobody")) : null,
      h("button", { type: "submit", class: "primary" }, t("workspace.action.assign")));
  }

  textForm(move) {
    return h("form", { id: "inc-move-form", class: "inc-form", "data-action": move },
      h("label", { for: "inc-move-text" }, t(`workspace.text.${move}`)),
      h("textarea", { id: "inc-move-text", rows: 2, maxlength: 20000, required: TEXT_REQUIRED.has(move) }),
      h("button", { type: "submit", class: "primary" }, t(`workspace.action.${move}`)));
  }

  mapButton(lon, lat, cls) {
    const b = h("button", { type: "button", class: `inc-map ${cls}`, "data-lon": lon, "data-lat": lat }, t("workspace.show_on_map"));
    b.addEventListener("click", () => this.showOnMap(lon, lat));
    return b;
  }

  // Pan to the point and ring it, so the eye finds it among the markers; the ring stays until
  // another point is shown or the workspace closes.
  showOnMap(lon, lat) {
    const map = this.dash.map;
    const at = this.dash.toDisplay(lon, lat);
    this.highlight.clearLayers();
    L.marker(at, {
      icon: L.divIcon({ className: "inc-highlight", iconSize: [44, 44] }),
      interactive: false, keyboard: false,
    }).addTo(this.highlight);
    map.setView(at, Math.max(map.getZoom(), 17), { animate: false });
  }

  warningSection(d) {
    const box = h("div", { class: "warning-explain inc-warning", "aria-live": "polite" }, t("detail.loading"));
    const section = h("section", { class: "inc-section", "aria-labelledby": "inc-warning-title" },
      h("h3", { id: "inc-warning-title" }, t("workspace.cell_warning", { cell: this.cellName(d.cell_id) })), box);
    const cell = this.dash.cells?.cells.get(d.cell_id)?.feature;
    const buttons = h("div", { class: "inc-buttons" });
    if (cell) {
      const b = h("button", { type: "button", class: "inc-open-cell" }, t("workspace.open_cell"));
      b.addEventListener("click", () => {
        this.dash.panels.showCell(this.dash.cells.cells.get(d.cell_id)?.feature);
      });
      buttons.append(b);
    }
    if (cell && this.can("org:write")) {
      const b = h("button", { type: "button", class: "inc-edit-cell" }, t("workspace.edit_cell"));
      b.addEventListener("click", () => this.dash.org.open(d.cell_id));
      buttons.append(b);
    }
    section.append(buttons);
    // Read-only here: the override lives in the cell's own panel, next to its history.
    mountWarning(box, d.cell_id, { canWarn: false, onChanged: async () => {} });
    return section;
  }

  alertsSection(d) {
    if (!d.alerts.length) return null;
    const items = d.alerts.slice().reverse().map((a) => {
      const full = this.alertDetails?.get(a.id);
      const open = h("button", { type: "button", class: "inc-alert-open" }, severityBadge(a.severity), " ",
        full?.title || t(`alert_kind.${a.kind}`), " · ", a.device, " · ", h("time", { datetime: a.ts }, formatDateTime(a.ts)));
      if (this.can("alerts:read")) open.addEventListener("click", () => this.dash.panels.showAlert(a.id));
      else open.disabled = true;
      return h("li", { class: "inc-alert", "data-id": a.id },
        open,
        full?.has_evidence ? this.evidenceThumb(a.id) : null,
        full?.lon != null ? this.mapButton(full.lon, full.lat, "inc-show-alert") : null);
    });
    return h("section", { class: "inc-section", "aria-labelledby": "inc-alerts-title" },
      h("h3", { id: "inc-alerts-title" }, t("workspace.alerts", { n: d.alert_count || d.alerts.length })),
      h("ul", { class: "inc-alerts" }, items),
      d.evidence_ids.length ? h("p", { class: "muted" }, t("workspace.evidence_linked", { n: d.evidence_ids.length })) : null);
  }

  evidenceThumb(alertId) {
    const src = `/api/v1/alerts/${encodeURIComponent(alertId)}/evidence`;
    const b = h("button", { type: "button", class: "inc-thumb", "aria-label": t("workspace.enlarge") },
      h("img", { src, alt: t("alert.evidence_alt"), loading: "lazy" }));
    b.addEventListener("click", () => this.enlarge(src, b));
    return b;
  }

  evidenceDialog() {
    const img = h("img", { class: "inc-evidence-large", alt: t("alert.evidence_alt") });
    const close = h("button", { type: "button", class: "close inc-dialog-close", "aria-label": t("workspace.close") }, "×");
    const dialog = h("dialog", { id: "inc-evidence", class: "inc-dialog", "aria-label": t("alert.evidence") }, close, img);
    close.addEventListener("click", () => dialog.close());
    // A click on the backdrop (outside the picture) closes it as Escape does.
    dialog.addEventListener("click", (ev) => {
      if (ev.target === dialog) dialog.close();
    });
    dialog.addEventListener("close", () => this.dialogOpener?.focus());
    document.body.append(dialog);
    return dialog;
  }

  enlarge(src, opener) {
    const img = this.dialog.querySelector("img");
    img.src = src;
    img.alt = t("alert.evidence_alt");
    this.dialog.setAttribute("aria-label", t("alert.evidence"));
    this.dialogOpener = opener;
    this.dialog.showModal();
  }

  attachmentsSection(d) {
    const canAttach = this.can("incidents:work");
    if (!d.attachments.length && !canAttach) return null;
    const items = d.attachments.map((a) => h("li", null,
      h("a", { href: path(d.id, `attachments/${encodeURIComponent(a.id)}`), download: a.filename || a.id },
        a.filename || a.id), " ",
      h("span", { class: "muted" }, `${a.content_type} · ${t("workspace.kb", { n: Math.max(1, Math.round(a.size_bytes / 1024)) })} · ${a.created_by}`)));
    return h("section", { class: "inc-section", "aria-labelledby": "inc-att-title" },
      h("h3", { id: "inc-att-title" }, t("workspace.attachments")),
      items.length ? h("ul", { class: "inc-attachments" }, items) : h("p", { class: "muted" }, t("workspace.no_attachments")),
      canAttach ? h("div", { class: "inc-attach" },
        h("input", { id: "inc-attach-file", class: "sr-only file-input", type: "file", accept: "image/jpeg,audio/*,application/pdf" }),
        h("label", { for: "inc-attach-file", class: "file-button" }, t("workspace.attach"))) : null);
  }

  commentForm() {
    if (!this.can("incidents:work")) return null;
    return h("form", { id: "inc-comment-form", class: "inc-form" },
      h("label", { for: "inc-comment" }, t("workspace.comment")),
      h("textarea", { id: "inc-comment", rows: 2, maxlength: 20000, required: true }),
      h("button", { type: "submit", class: "primary" }, t("workspace.comment_send")));
  }

  timelineSection(d) {
    const items = d.timeline.slice().reverse().map((e) => h("li", { class: `inc-event inc-event-${e.kind}` },
      h("time", { datetime: e.ts }, formatDateTime(e.ts)), " · ", h("strong", null, e.actor), " · ",
      t(`workspace.event.${e.kind}`) === `workspace.event.${e.kind}` ? e.kind : t(`workspace.event.${e.kind}`),
      e.to_state && known(STATES, e.to_state) ? [" → ", t(`workspace.state.${e.to_state}`)] : null,
      e.kind === "assigned" && e.details?.assignee ? [" · ", String(e.details.assignee)] : null,
      e.kind === "dispatch" ? [" · ", dispatchEventText(e.details)] : null,
      e.text ? h("p", { class: "inc-event-text" }, e.text) : null));
    return h("section", { class: "inc-section", "aria-labelledby": "inc-timeline-title" },
      h("h3", { id: "inc-timeline-title" }, t("workspace.timeline")),
      h("ol", { class: "inc-timeline", reversed: true }, items));
  }

  bindDetail(box, d) {
    for (const b of box.querySelectorAll(".inc-action")) {
      b.addEventListener("click", async () => {
        const move = b.dataset.action;
        this.message = null;
        if (move === "start") {
          await this.send(d, "start", { version: d.version });
          return;
        }
        this.pending = this.pending === move ? null : move;
        if (this.pending === "assign" && !this.assigneesFor(d)) await this.loadAssignees(d);
        this.renderDetail(this.incident);
        box.querySelector(move === "assign" ? "#inc-assignee" : "#inc-move-text")?.focus();
      });
    }
    box.querySelector("#inc-assign-form")?.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const who = box.querySelector("#inc-assignee").value;
      if (who) await this.send(d, "assign", { assignee: who, version: d.version });
    });
    box.querySelector("#inc-move-form")?.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const move = ev.target.dataset.action;
      const text = box.querySelector("#inc-move-text").value.trim();
      if (TEXT_REQUIRED.has(move) && !text) return;
      await this.send(d, move, { [TEXT_FIELD[move]]: text, version: d.version });
    });
    box.querySelector("#inc-comment-form")?.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const input = box.querySelector("#inc-comment");
      const text = input.value.trim();
      if (!text) return;
      if (await this.send(d, "comments", { text })) {
        const fresh = this.root.querySelector("#inc-comment");
        if (fresh) fresh.value = "";
      }
    });
    box.querySelector("#inc-attach-file")?.addEventListener("change", async (ev) => {
      const file = ev.target.files[0];
      if (!file) return;
      try {
        await api(`${path(d.id, "attachments")}?${new URLSearchParams({ filename: file.name.slice(0, 200) })}`, {
          method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" },
        });
        this.message = { text: t("workspace.attached", { name: file.name }), cls: "ok" };
      } catch (err) {
        this.message = { text: t("workspace.failed", { reason: err.message }), cls: "error" };
      }
      await this.reload();
    });
  }

  assigneesFor(d) {
    return this.assignees && this.assigneesIncident === d.id ? this.assignees : null;
  }

  async loadAssignees(d) {
    try {
      this.assignees = await api(path(d.id, "assignees"));
      this.assigneesIncident = d.id;
    } catch (err) {
      this.assignees = { team: [], officers: [] };
      this.message = { text: t("workspace.failed", { reason: err.message }), cls: "error" };
    }
  }

  // One move or comment; the hub's answer is the incident as it now is. A 409 means somebody
  // changed it meanwhile (or the move is no longer allowed): say so, keep what was typed, and
  // offer to reload instead of retrying over their change.
  async send(d, what, body) {
    try {
      const fresh = await api(path(d.id, what), { method: "POST", body });
      this.pending = null;
      this.message = { text: t(`workspace.done.${what}`), cls: "ok" };
      this.incident = fresh;
      await this.loadAlertDetails(fresh);
      this.renderDetail(fresh);
      return true;
    } catch (err) {
      const conflict = err instanceof ApiError && err.status === 409;
      this.message = {
        text: conflict ? t("workspace.conflict", { reason: err.message }) : t("workspace.failed", { reason: err.message }),
        cls: "error",
        reload: conflict,
      };
      this.renderDetail(this.incident);
      return false;
    }
  }

  // --- live -------------------------------------------------------------------------------
  // Another operator (or the alert intake) changed an incident: refresh what is on screen,
  // at most once per LIVE_REFRESH_MS however many events arrive.
  onLive(ev) {
    if (this.root.hidden) return;
    if (this.view === "detail" && this.incident?.id !== ev.id) return;
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      if (this.view === "detail") this.reload();
      else if (this.view === "list") this.loadPage(this.pageIndex);
    }, LIVE_REFRESH_MS);
  }
}
