// The incident workspace's dispatch panel: who was sent to this incident, in which round, what
// they answered and when, how far they were; live from the `dispatch` layer. With
// dispatch:manage the operator sends an officer by hand (picked from GET /officers with their
// availability and distance from the incident) and cancels a dispatch with a reason; with
// dispatch:read alone the panel only shows. "Nobody answered" stands out when the hub gave up
// ringing (an `unanswered` event, or every dispatch timed out). The hub checks every move.
import { api, ApiError } from "./api.js";
import { t, formatTime, formatAgo } from "./i18n.js";
import { fill, h } from "./dom.js";
import { distanceM, distanceParts } from "./bearing.js";

export const DISPATCH_STATES = [
  "notified", "acknowledged", "en_route", "on_scene", "verified", "rejected", "timed_out", "cancelled", "done",
];
export const OPEN_DISPATCH = new Set(["notified", "acknowledged", "en_route", "on_scene", "verified"]);
export const ACTIONS = ["attend", "verify", "assist", "observe"];
export const ANSWERS = ["acknowledge", "on_my_way", "arrived", "verify", "reject", "need_backup"];
export const AVAILABILITY = ["available", "busy", "offline", "off_duty"];
const AVAILABILITY_RANK = { available: 0, busy: 1, offline: 2, off_duty: 3 };
const TICK_MS = 15000; // "2 minutes ago" moves on while the panel is open
const LIVE_REFRESH_MS = 300;

const known = (list, v) => (list.includes(v) ? v : null);
const incidentPath = (id) => `/api/v1/incidents/${encodeURIComponent(id)}/dispatches`;

export function dispatchStateLabel(state) {
  const s = known(DISPATCH_STATES, state);
  return h("span", { class: `disp-state disp-state-${s || "unknown"}` }, s ? t(`dispatchui.state.${s}`) : String(state));
}

export function availabilityLabel(a) {
  const v = known(AVAILABILITY, a);
  return h("span", { class: `avail avail-${v || "unknown"}` }, v ? t(`dispatchui.availability.${v}`) : String(a));
}

export function distanceText(m) {
  if (m === null || m === undefined || !Number.isFinite(m)) return t("dispatchui.distance_unknown");
  const { key, n } = distanceParts(m);
  return t(key, { n });
}

// Officers for the picker: available first, then the nearest to the incident.
export function rankOfficers(officers, incident) {
  const at = incident && incident.lon != null ? incident : null;
  const rows = officers.map((o) => ({
    ...o,
    distance_m: at && o.last_fix ? distanceM(o.last_fix.lon, o.last_fix.lat, at.lon, at.lat) : null,
  }));
  rows.sort((a, b) => (AVAILABILITY_RANK[a.availability] ?? 9) - (AVAILABILITY_RANK[b.availability] ?? 9)
    || (a.distance_m ?? Infinity) - (b.distance_m ?? Infinity)
    || a.username.localeCompare(b.username));
  return rows;
}

// Nobody is on the way: the hub's last word on the incident's timeline about dispatch is that
// nobody (more) could be asked or answered, or every dispatch ended without an answer.
export function nobodyAnswered(dispatches, timeline = []) {
  if (dispatches.some((d) => OPEN_DISPATCH.has(d.state) || d.state === "done")) return false;
  const last = timeline.filter((e) => e.kind === "dispatch").at(-1);
  if (last?.details?.change === "unanswered") return true;
  return dispatches.some((d) => d.state === "timed_out");
}

const TIMELINE_CHANGES = ["notified", "answered", "widened", "unanswered", "cancelled"];

// A dispatch event on the incident's timeline, in words ("Dispatch: ann notified").
export function dispatchEventText(details) {
  const change = known(TIMELINE_CHANGES, details?.change);
  if (!change) return String(details?.change ?? "");
  const answer = known(ANSWERS, details.answer) ? t(`dispatchui.answer.${details.answer}`) : String(details.answer ?? "");
  return t(`dispatchui.timeline.${change}`, { officer: String(details.officer ?? ""), answer });
}

export class DispatchPanel {
  constructor(dash) {
    this.dash = dash;
    this.incident = null;
    this.items = [];
    this.officers = null;
    this.unanswered = new Set(); // incident ids the hub reported unanswered (live)
    this.picking = false;
    this.cancelling = null; // dispatch id whose cancel form is open
    this.forceOffered = false; // the hub refused an unavailable officer: "send anyway" shown
    this.message = null;
    this.loadError = null;
    this.refreshTimer = null;
    this.box = h("section", { id: "inc-dispatch", class: "inc-section inc-dispatch", "aria-labelledby": "inc-dispatch-title" });
    setInterval(() => {
      if (this.box.isConnected) this.render();
    }, TICK_MS);
  }

  can(p) {
    return this.dash.can(p);
  }

  // The section for incident `d`, kept across the workspace's re-renders (a live refresh of the
  // incident does not empty it or lose what is typed in it).
  node(d) {
    if (!this.can("dispatch:read")) return null;
    if (this.incident?.id !== d.id) {
      this.items = [];
      this.picking = false;
      this.forceOffered = false;
      this.cancelling = null;
      this.message = null;
      this.loadError = null;
      this.incident = d;
      this.render();
      this.load();
    } else {
      this.incident = d;
      this.render(); // the incident changed (its timeline may say nobody answered)
    }
    return this.box;
  }

  async load() {
    const id = this.incident?.id;
    if (!id) return;
    try {
      const items = await api(incidentPath(id));
      if (this.incident?.id !== id) return;
      this.items = items;
      this.loadError = null;
    } catch (err) {
      if (this.incident?.id !== id) return;
      this.loadError = t("dispatchui.load_failed", { reason: err.message });
    }
    this.render();
  }

  // A live `dispatch` event: remember "nobody answered", refresh the open incident's list.
  onLive(ev) {
    if (ev.change === "unanswered") this.unanswered.add(ev.incident_id);
    else if (ev.change === "notified" || (ev.change === "answered" && ev.answer !== "reject")) this.unanswered.delete(ev.incident_id);
    if (this.incident?.id !== ev.incident_id || !this.box.isConnected) return;
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.load(), LIVE_REFRESH_MS);
  }

  isUnanswered() {
    const id = this.incident?.id;
    if (!id) return false;
    // The live event says so at once; the list says so after a reload (or on another tab).
    if (this.items.some((d) => OPEN_DISPATCH.has(d.state))) return false;
    return this.unanswered.has(id) || nobodyAnswered(this.items, this.incident.timeline || []);
  }

  render() {
    const d = this.incident;
    if (!d) return;
    const keep = this.keepTyped();
    const manage = this.can("dispatch:manage");
    const nobody = this.isUnanswered();
    const dispatchButton = manage ? h("button", {
      type: "button", id: "disp-open-picker", class: "disp-open-picker", "aria-expanded": String(this.picking),
    }, t("dispatchui.dispatch_officer")) : null;
    dispatchButton?.addEventListener("click", () => this.togglePicker());
    fill(this.box,
      h("h3", { id: "inc-dispatch-title" }, t("dispatchui.title")),
      nobody ? h("p", { id: "disp-nobody", class: "disp-nobody", role: "alert" }, t("dispatchui.nobody_answered")) : null,
      this.loadError ? h("p", { class: "inc-message error", role: "alert" }, this.loadError) : null,
      this.items.length
        ? h("ol", { id: "disp-list", class: "disp-list" }, this.items.map((x) => this.row(x, manage)))
        : h("p", { id: "disp-none", class: "muted" }, t("dispatchui.none")),
      h("p", { id: "disp-message", class: `inc-message ${this.message?.cls || ""}`, role: "status" }, this.message?.text || ""),
      dispatchButton,
      manage && this.picking ? this.picker() : null);
    keep();
  }

  row(x, manage) {
    const answer = x.last_answer && known(ANSWERS, x.last_answer) ? t(`dispatchui.answer.${x.last_answer}`) : x.last_answer;
    const meta = [
      t("dispatchui.round", { n: x.round + 1 }), // the hub counts rounds from 0
      known(ACTIONS, x.action) ? t(`dispatchui.action.${x.action}`) : x.action,
      distanceText(x.distance_m),
    ].join(" · ");
    const cancel = manage && OPEN_DISPATCH.has(x.state)
      ? h("button", { type: "button", class: "disp-cancel", "data-id": x.id, "aria-expanded": String(this.cancelling === x.id) }, t("dispatchui.cancel"))
      : null;
    cancel?.addEventListener("click", () => {
      this.cancelling = this.cancelling === x.id ? null : x.id;
      this.message = null;
      this.render();
      this.box.querySelector("#disp-cancel-reason")?.focus();
    });
    return h("li", { class: `disp-item disp-item-${known(DISPATCH_STATES, x.state) || "unknown"}`, "data-id": x.id, "data-officer": x.officer },
      h("div", { class: "disp-head" }, h("strong", { class: "disp-officer" }, x.officer), " ", dispatchStateLabel(x.state)),
      h("div", { class: "disp-meta muted" }, meta),
      h("div", { class: "disp-meta muted" },
        t("dispatchui.notified", { at: formatTime(x.notified_at), ago: formatAgo(x.notified_at) }),
        x.last_answer ? [" · ", h("span", { class: "disp-answer" }, t("dispatchui.last_answer", {
          answer, at: x.answered_at ? formatTime(x.answered_at) : "—",
        }))] : null),
      cancel,
      this.cancelling === x.id ? this.cancelForm(x) : null);
  }

  cancelForm(x) {
    const form = h("form", { id: "disp-cancel-form", class: "inc-form" },
      h("label", { for: "disp-cancel-reason" }, t("dispatchui.cancel_reason")),
      h("textarea", { id: "disp-cancel-reason", rows: 2, maxlength: 2000, required: true }),
      h("button", { type: "submit", class: "primary" }, t("dispatchui.cancel_confirm")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const reason = form.querySelector("#disp-cancel-reason").value.trim();
      if (!reason) return;
      await this.send(`/api/v1/dispatches/${encodeURIComponent(x.id)}/cancel`, { reason }, "dispatchui.cancelled");
    });
    return form;
  }

  async togglePicker() {
    this.picking = !this.picking;
    this.message = null;
    if (this.picking) {
      try {
        const site = this.dash.config.site ? `?${new URLSearchParams({ site: this.dash.config.site })}` : "";
        this.officers = await api(`/api/v1/officers${site}`);
      } catch (err) {
        this.officers = [];
        this.message = { text: t("dispatchui.failed", { reason: err.message }), cls: "error" };
      }
    }
    this.render();
    if (this.picking) this.box.querySelector("#disp-officer")?.focus();
  }

  picker() {
    const ranked = rankOfficers(this.officers || [], this.incident);
    const options = ranked.map((o) => h("option", { value: o.username, "data-availability": o.availability },
      `${o.display_name || o.username} · ${known(AVAILABILITY, o.availability) ? t(`dispatchui.availability.${o.availability}`) : o.availability} · ${distanceText(o.distance_m)}`));
    const form = h("form", { id: "disp-picker", class: "inc-form disp-picker" },
      h("label", { for: "disp-officer" }, t("dispatchui.officer")),
      ranked.length
        ? h("select", { id: "disp-officer", required: true }, options)
        : h("p", { class: "muted", id: "disp-no-officers" }, t("dispatchui.no_officers")),
      h("label", { for: "disp-action" }, t("dispatchui.expected_action")),
      h("select", { id: "disp-action" }, ACTIONS.map((a) => h("option", { value: a }, t(`dispatchui.action.${a}`)))),
      this.forceOffered ? h("label", { class: "disp-force" },
        h("input", { type: "checkbox", id: "disp-force" }), " ", t("dispatchui.force")) : null,
      h("button", { type: "submit", class: "primary", disabled: !ranked.length }, t("dispatchui.send")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const officer = form.querySelector("#disp-officer")?.value;
      if (!officer) return;
      const body = { officer, action: form.querySelector("#disp-action").value };
      if (form.querySelector("#disp-force")?.checked) body.force = true;
      const ok = await this.send(incidentPath(this.incident.id), body, "dispatchui.sent", { officer });
      if (ok) {
        this.picking = false;
        this.forceOffered = false;
        this.render();
      }
    });
    return form;
  }

  // One manual dispatch or cancel; the hub's refusal is shown as it says it. A 409 on a
  // dispatch means the officer is offline or off duty: the operator may send anyway.
  async send(url, body, doneKey, vars = {}) {
    try {
      await api(url, { method: "POST", body });
      this.message = { text: t(doneKey, vars), cls: "ok" };
      this.cancelling = null;
      await this.load();
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.status === 409 && body.officer && !body.force) {
        this.forceOffered = true;
        this.message = { text: t("dispatchui.refused_unavailable", { reason: err.message }), cls: "error" };
      } else {
        this.message = { text: t("dispatchui.failed", { reason: err.message }), cls: "error" };
      }
      this.render();
      return false;
    }
  }

  keepTyped() {
    const values = {};
    for (const el of this.box.querySelectorAll("textarea[id], select[id], input[type=checkbox][id]")) {
      values[el.id] = el.type === "checkbox" ? el.checked : el.value;
    }
    const focused = this.box.contains(document.activeElement) ? document.activeElement.id : null;
    return () => {
      for (const [id, v] of Object.entries(values)) {
        const el = this.box.querySelector(`#${CSS.escape(id)}`);
        if (!el) continue;
        if (el.type === "checkbox") el.checked = v;
        else if (el.tagName !== "SELECT" || [...el.options].some((o) => o.value === v)) el.value = v;
      }
      if (focused) this.box.querySelector(`#${CSS.escape(focused)}`)?.focus();
    };
  }
}
