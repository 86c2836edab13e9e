// The triage feed: open incidents first, then open critical alerts, then the other alerts by
// time. Every list and every figure comes from the hub's API with the same filters (no cap:
// each section pages on with "show more", and its count is the hub's own); live updates never
// move the row under the pointer or take the focus; a new critical item beeps, raises a browser
// notification (both mutable) and counts in the tab title. Alert headlines are made from the
// alert's kind in the operator's language; the device's own text follows as a note.
import { api, fetchAll } from "./api.js";
import { t, formatTime, onLanguage } from "./i18n.js";
import { fill, h } from "./dom.js";
import { severityBadge } from "./layers.js";
import { ALERT_KINDS, alertTitle } from "./alert-text.js";

export { alertTitle };

const $ = (sel) => document.querySelector(sel);

const PAGE = 50;
const OPEN_STATES = ["new", "assigned", "in_progress"];
const SEVERITIES = ["critical", "high", "medium", "low", "info"];
const LEVELS = new Set(["critical", "high", "medium", "low"]);
const WINDOWS_S = { "1h": 3600, "24h": 86400, "7d": 7 * 86400 };
const SEGMENT = /^[A-Za-z0-9_-]{1,64}$/;
const MUTE_KEY = "gw.feed.muted";
// Counts are asked again at most this often under a stream of events (the figures stay the
// hub's own, the hub is not asked 50 times a second).
const COUNT_DEBOUNCE_MS = 400;
const SEEN_MAX = 20000;

function isOpenAlert(a) {
  return a.status !== "acknowledged";
}

export class Feed {
  constructor(dash) {
    this.dash = dash;
    this.box = $("#feed-list");
    this.filters = { severity: "", kind: "", cell: "", department: "", device: "", window: "" };
    this.departments = [];
    this.sections = [];
    this.pending = []; // new items held while the pointer or the focus is in the feed
    this.incoming = []; // new items for the next frame
    this.frameAsked = false;
    this.stale = false; // an update the page cannot place (a cell filter): reload on release
    this.pointerIn = false;
    this.generation = 0; // a reload supersedes the pages and counts still on their way
    this.countTimer = null;
    this.muted = localStorage.getItem(MUTE_KEY) === "1";
    this.audio = null;
    this.stats = { beeps: 0, notifications: 0, held: 0, unanswered: 0 };
    this.unanswered = new Set(); // incidents nobody answered (live `dispatch` events)
    this.seen = new Set(); // ids already announced (a live event and a reload never beep twice)
    this.baseTitle = document.title;
    this.criticalOpen = null;
    this.languageStamp = 0;
    this.bind();
  }

  can(p) {
    return this.dash.can(p);
  }

  // --- wiring -------------------------------------------------------------------------------
  bind() {
    $("#feed-open-only").addEventListener("change", () => this.reload());
    $("#feed-filters").addEventListener("submit", (ev) => ev.preventDefault());
    const hold = $("#feed");
    hold.addEventListener("pointerenter", () => { this.pointerIn = true; });
    hold.addEventListener("pointerleave", () => {
      this.pointerIn = false;
      this.release();
    });
    hold.addEventListener("focusout", (ev) => {
      if (!hold.contains(ev.relatedTarget)) setTimeout(() => this.release(), 0);
    });
    $("#feed-new").addEventListener("click", () => this.release(true));
    $("#feed-mute").addEventListener("click", () => this.setMuted(!this.muted));
    $("#feed-notify").addEventListener("click", async () => {
      await Notification.requestPermission();
      this.renderTools();
    });
    // Browsers start sound only after a user gesture: the first one anywhere unlocks it.
    document.addEventListener("pointerdown", () => this.unlockAudio(), { once: true, capture: true });
    document.addEventListener("keydown", () => this.unlockAudio(), { once: true, capture: true });
    onLanguage(() => this.relabel());
  }

  async start() {
    if (this.can("org:read")) {
      try {
        this.departments = await fetchAll("/api/v1/departments", this.siteParams());
      } catch (err) {
        console.warn("departments:", err);
      }
    }
    this.renderTools();
    this.renderFilters();
    await this.reload();
  }

  holding() {
    return this.pointerIn || $("#feed").contains(document.activeElement);
  }

  siteParams() {
    return this.dash.config.site ? { site: this.dash.config.site } : {};
  }

  // --- the API queries ------------------------------------------------------------------------
  sinceIso() {
    const w = WINDOWS_S[this.filters.window];
    return w ? new Date(Date.now() - w * 1000).toISOString() : null;
  }

  alertQuery(extra) {
    const f = this.filters;
    const q = { ...this.siteParams() };
    if (f.severity) q.severity = f.severity;
    if (f.kind) q.kind = f.kind;
    if (f.cell) q.cell = f.cell;
    if (f.department) q.department = f.department;
    if (f.device) q.device = f.device;
    const since = this.sinceIso();
    if (since) q.since = since;
    return { ...q, ...extra };
  }

  incidentQuery() {
    const f = this.filters;
    if (f.severity && !LEVELS.has(f.severity)) return null; // no incident is "info"
    const q = new URLSearchParams(this.siteParams());
    for (const s of OPEN_STATES) q.append("state", s);
    if (f.severity) q.set("level", f.severity);
    if (f.kind) q.set("kind", f.kind);
    if (f.cell) q.set("cell", f.cell);
    if (f.department) q.set("department", f.department);
    if (f.device) q.set("device", f.device);
    const since = this.sinceIso();
    if (since) q.set("since", since);
    return q;
  }

  // Critical alerts have their own section above the rest (open ones only with "open only"),
  // so the other alerts' query leaves critical out: each alert is in one section, counted once.
  buildSections() {
    const openOnly = $("#feed-open-only").checked;
    const status = openOnly ? { status: "new" } : {};
    const sev = this.filters.severity;
    const sections = [];
    const iq = this.can("incidents:read") ? this.incidentQuery() : null;
    if (iq) sections.push(new Section(this, "incidents", "/api/v1/incidents", iq));
    if (!this.can("alerts:read")) return sections; // the map's role (installer) has no alerts
    if (!sev || sev === "critical") {
      const q = new URLSearchParams(this.alertQuery({ ...status, severity: "critical" }));
      sections.push(new Section(this, "critical", "/api/v1/alerts", q, openOnly ? "critical" : "critical_all"));
    }
    if (sev !== "critical") {
      const q = new URLSearchParams(this.alertQuery(status));
      if (!sev) {
        q.delete("severity");
        for (const s of SEVERITIES) if (s !== "critical") q.append("severity", s);
      }
      sections.push(new Section(this, "alerts", "/api/v1/alerts", q));
    }
    return sections;
  }

  async reload() {
    const gen = ++this.generation;
    const lang = this.languageStamp;
    this.pending = [];
    this.incoming = [];
    this.stale = false;
    const sections = this.buildSections();
    const pages = await Promise.all(sections.map((s) => s.firstPage().then(() => s, (err) => {
      console.error("feed:", err);
      return s;
    })));
    if (gen !== this.generation) return;
    this.sections = pages;
    // The language changed while the pages were on their way: they were drawn in the old one.
    if (lang !== this.languageStamp) for (const sec of pages) for (const row of sec.items.values()) sec.redraw(row);
    for (const s of this.sections) for (const item of s.items.values()) this.seen.add(item.data.id);
    this.render();
    this.refreshCounts(true);
  }

  refreshCounts(now = false) {
    clearTimeout(this.countTimer);
    const run = async () => {
      const gen = this.generation;
      const none = Promise.resolve({ total: null });
      const reads = this.can("alerts:read");
      const alertTotal = reads ? api(`/api/v1/alerts/count?${new URLSearchParams(this.alertQuery({ status: "new" }))}`) : none;
      const crit = reads ? api(`/api/v1/alerts/count?${new URLSearchParams({ ...this.siteParams(), status: "new", severity: "critical" })}`) : none;
      const parts = await Promise.allSettled([alertTotal, crit, ...this.sections.map((s) => s.count())]);
      if (gen !== this.generation) return;
      if (parts[0].status === "fulfilled") this.openTotal = parts[0].value.total;
      if (parts[1].status === "fulfilled") this.criticalOpen = parts[1].value.total;
      this.sections.forEach((s, i) => {
        if (parts[i + 2].status === "fulfilled") s.total = parts[i + 2].value;
      });
      this.renderCounts();
    };
    if (now) run().catch((err) => console.error("feed counts:", err));
    else this.countTimer = setTimeout(() => run().catch((err) => console.error("feed counts:", err)), COUNT_DEBOUNCE_MS);
  }

  // --- live updates ---------------------------------------------------------------------------
  // An alert from the live stream, or one this page changed (ack): `own` marks the user's
  // own action, which may rearrange the list at once (they asked for it).
  remember(id) {
    this.seen.add(id);
    // Bounded: a day of a busy stream must not grow the page; the oldest ids go first.
    if (this.seen.size > SEEN_MAX) for (const old of [...this.seen].slice(0, SEEN_MAX / 4)) this.seen.delete(old);
  }

  onAlert(a, { own = false } = {}) {
    const fresh = !this.seen.has(a.id);
    this.remember(a.id);
    if (fresh && a.severity === "critical" && isOpenAlert(a)) this.alarm(alertTitle(a), a.id, () => this.dash.panels.showAlert(a.id));
    const placed = this.sections.find((s) => s.items.has(a.id));
    if (placed) {
      const row = placed.items.get(a.id);
      row.data = { ...row.data, ...a };
      const stays = placed.accepts(row.data);
      if (stays) placed.redraw(row);
      // Your own ack from the keyboard or the detail panel takes the row out at once; under
      // the mouse it stays (acknowledged) until the pointer leaves, so the next row never
      // slides under a second click.
      else if (own && !this.pointerIn) this.mutate(() => placed.remove(a.id), true);
      else if (this.holding()) {
        placed.redraw(row); // shown as acknowledged until the pointer leaves
        row.leaving = true;
      } else this.mutate(() => placed.remove(a.id));
    } else if (fresh) {
      this.arrive({ type: "alert", data: a });
    }
    this.refreshCounts();
  }

  // Another operator's change to an alert (an ack or a note, live, from any hub replica): only
  // a row this page holds changes; the counts follow the hub either way.
  onAlertChange(change) {
    if (this.sections.some((s) => s.items.has(change.id))) this.onAlert(change);
    else this.refreshCounts();
  }

  async onIncident(ev) {
    const placed = this.sections.find((s) => s.id === "incidents" && s.items.has(ev.id));
    if (placed) {
      const row = placed.items.get(ev.id);
      row.data = { ...row.data, ...ev };
      if (placed.accepts(row.data)) placed.redraw(row);
      else if (this.holding()) {
        placed.redraw(row);
        row.leaving = true;
      } else this.mutate(() => placed.remove(ev.id));
    } else if (!this.seen.has(ev.id) && this.can("incidents:read")) {
      this.remember(ev.id);
      let full;
      try {
        full = await api(`/api/v1/incidents/${encodeURIComponent(ev.id)}`);
      } catch (err) {
        console.warn("incident:", err);
        return;
      }
      if (full.level === "critical" && OPEN_STATES.includes(full.state)) {
        this.alarm(`${full.number} ${full.title}`, full.id, () => this.openIncident(full.id));
      }
      this.arrive({ type: "incident", data: full });
    }
    this.refreshCounts();
  }

  // The hub rang every officer it could and nobody acknowledged (a live `dispatch` event,
  // change "unanswered"): the commander's alarm, headed with the incident's number, and one
  // more in the title's count until somebody is dispatched again or answers.
  async onDispatch(ev) {
    const id = ev.incident_id;
    if (ev.change === "notified" || (ev.change === "answered" && ev.answer !== "reject")) {
      if (this.unanswered.delete(id)) this.renderCounts();
      return;
    }
    if (ev.change !== "unanswered" || this.unanswered.has(id)) return;
    this.unanswered.add(id);
    this.renderCounts();
    let number = id;
    if (this.can("incidents:read")) {
      try {
        number = (await api(`/api/v1/incidents/${encodeURIComponent(id)}`)).number;
      } catch (err) {
        console.warn("incident:", err);
      }
    }
    this.stats.unanswered += 1;
    this.alarm(t("dispatchui.alarm_unanswered", { number }), `unanswered-${id}`, () => this.openIncident(id));
  }

  arrive(item) {
    const section = this.sections.find((s) => s.takes(item));
    if (section === undefined) {
      // Filtered by a cell or department: only the hub can say whether it belongs.
      if (this.filters.cell || this.filters.department) {
        this.stale = true;
        if (this.holding()) this.renderNewBar();
        else this.scheduleReload();
      }
      return;
    }
    if (this.holding()) {
      this.pending.push(item);
      this.stats.held += 1;
      this.renderNewBar();
    } else {
      // Applied once per frame however many arrive in it: one layout, one scroll fix.
      this.incoming.push(item);
      if (!this.frameAsked) {
        this.frameAsked = true;
        requestAnimationFrame(() => this.applyIncoming());
      }
    }
  }

  applyIncoming() {
    this.frameAsked = false;
    const items = this.incoming;
    this.incoming = [];
    if (this.holding()) {
      // The pointer came in since: these wait in the bar like the others.
      this.pending.push(...items);
      this.renderNewBar();
      return;
    }
    this.mutate(() => {
      for (const item of items) this.sections.find((s) => s.takes(item))?.prepend(item.data);
    });
  }

  // At most one reload per COUNT_DEBOUNCE_MS however fast such items come.
  scheduleReload() {
    if (this.reloadTimer) return;
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = null;
      if (this.holding()) this.renderNewBar();
      else this.reload();
    }, COUNT_DEBOUNCE_MS);
  }

  // The pointer and the focus have left the feed (or the user asked for the new items):
  // apply what was held, keeping the rows in view where they are.
  release(asked = false) {
    if (!asked && this.holding()) return;
    if (this.stale) {
      this.reload();
      return;
    }
    const pending = this.pending;
    this.pending = [];
    this.mutate(() => {
      for (const s of this.sections) {
        for (const [id, row] of [...s.items]) if (row.leaving) s.remove(id);
      }
      for (const item of pending) this.sections.find((s) => s.takes(item))?.prepend(item.data);
    }, asked);
    this.renderNewBar();
  }

  // Change the list without moving what the user is looking at: the first row in view stays
  // at the same height in the viewport (rows added above it scroll the list by their height).
  mutate(fn, own = false) {
    const box = this.box;
    const anchor = box.scrollTop > 0 ? [...box.querySelectorAll("li[data-id]")].find(
      (li) => li.offsetTop + li.offsetHeight > box.scrollTop) : null;
    const before = anchor ? anchor.offsetTop : 0;
    const focused = box.contains(document.activeElement) ? document.activeElement.closest("li[data-id]") : null;
    const next = focused ? (focused.nextElementSibling || focused.previousElementSibling) : null;
    fn();
    for (const s of this.sections) s.renderMore();
    this.renderEmpty();
    if (anchor && anchor.isConnected) box.scrollTop += anchor.offsetTop - before;
    // The user's own action took away the row they were on: keep them in the list.
    if (own && focused && !focused.isConnected && next?.isConnected) next.querySelector("button")?.focus();
  }

  // --- alarm: sound, notification, title ------------------------------------------------------
  unlockAudio() {
    if (this.audio || !window.AudioContext) return;
    this.audio = new AudioContext();
  }

  alarm(text, tag, onClick) {
    if (this.muted) return;
    this.beep();
    if ("Notification" in window && Notification.permission === "granted") {
      const n = new Notification(t("triage.notify_title"), { body: text, tag });
      n.onclick = () => {
        window.focus();
        onClick();
      };
      this.stats.notifications += 1;
    }
  }

  beep() {
    const ctx = this.audio;
    if (!ctx) return; // no gesture yet: the browser would refuse to play
    if (ctx.state === "suspended") ctx.resume();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "sine";
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.0001, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.25, ctx.currentTime + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 0.35);
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.4);
    this.stats.beeps += 1;
  }

  setMuted(on) {
    this.muted = on;
    localStorage.setItem(MUTE_KEY, on ? "1" : "0");
    this.renderTools();
  }

  diagnostics() {
    return { ...this.stats, muted: this.muted, pending: this.pending.length };
  }

  // --- rendering ------------------------------------------------------------------------------
  renderTools() {
    const mute = $("#feed-mute");
    mute.setAttribute("aria-pressed", String(this.muted));
    mute.textContent = t(this.muted ? "triage.unmute" : "triage.mute");
    const notify = $("#feed-notify");
    notify.hidden = !("Notification" in window) || Notification.permission !== "default";
    notify.textContent = t("triage.notify_enable");
  }

  renderFilters() {
    const f = this.filters;
    const select = (name, options) => {
      const el = h("select", { id: `feed-f-${name}`, name },
        h("option", { value: "" }, t(`triage.filter.any_${name}`)),
        options.map(([value, label]) => h("option", { value, selected: f[name] === value }, label)));
      el.addEventListener("change", () => {
        f[name] = el.value;
        this.renderFilterSummary();
        this.reload();
      });
      return h("label", { class: "feed-f" }, h("span", { class: "sr-only" }, t(`triage.filter.${name}`)), el);
    };
    const cells = [...this.dash.cells.cells.values()].map(({ feature }) => [feature.id, feature.properties.name || feature.id])
      .sort((a, b) => a[1].localeCompare(b[1]));
    const device = h("input", {
      id: "feed-f-device", type: "search", value: f.device, maxlength: 64, autocomplete: "off",
      placeholder: t("triage.filter.device"), "aria-label": t("triage.filter.device"),
    });
    device.addEventListener("change", () => {
      const v = device.value.trim();
      device.setCustomValidity(v && !SEGMENT.test(v) ? t("triage.filter.device_invalid") : "");
      if (v && !SEGMENT.test(v)) {
        device.reportValidity();
        return;
      }
      f.device = v;
      this.renderFilterSummary();
      this.reload();
    });
    const controls = [
      select("severity", SEVERITIES.map((s) => [s, t(`severity.${s}`)])),
      select("kind", ALERT_KINDS.map((k) => [k, t(`alert_kind.${k}`)])),
      cells.length ? select("cell", cells) : null,
      this.departments.length ? select("department", this.departments.map((d) => [d.id, d.name])) : null,
      h("label", { class: "feed-f" }, device),
      select("window", Object.keys(WINDOWS_S).map((w) => [w, t(`triage.filter.window_${w}`)])),
    ];
    fill($("#feed-filters"), controls);
    this.renderFilterSummary();
  }

  renderFilterSummary() {
    const active = Object.values(this.filters).filter(Boolean).length;
    $("#feed-filters-summary").textContent = active ? t("triage.filters_active", { n: active }) : t("triage.filters");
  }

  render() {
    fill(this.box, this.sections.map((s) => s.node()));
    this.renderEmpty();
    this.renderCounts();
    this.renderNewBar();
  }

  renderEmpty() {
    const empty = this.sections.every((s) => s.items.size === 0);
    let note = this.box.querySelector(".feed-empty");
    if (empty && !note) {
      note = h("p", { class: "muted feed-empty" }, t("feed.empty"));
      this.box.append(note);
    } else if (!empty && note) note.remove();
  }

  renderCounts() {
    const n = this.openTotal;
    $("#feed-count").textContent = n == null ? "" : t("feed.count", { n });
    for (const s of this.sections) s.renderMore();
    const c = (this.criticalOpen || 0) + this.unanswered.size;
    document.title = c ? t("triage.tab_title", { n: c, title: this.baseTitle }) : this.baseTitle;
  }

  renderNewBar() {
    const bar = $("#feed-new");
    const n = this.pending.length;
    // The bar keeps its place when empty, so showing it never moves the rows below it.
    bar.classList.toggle("is-empty", n === 0 && !this.stale);
    bar.disabled = n === 0 && !this.stale;
    bar.textContent = this.stale && n === 0 ? t("triage.new_unknown") : t("triage.new_items", { n });
  }

  relabel() {
    this.languageStamp += 1;
    this.renderTools();
    this.renderFilters();
    for (const s of this.sections) for (const row of s.items.values()) s.redraw(row);
    for (const s of this.sections) s.renderMore();
    this.renderCounts();
    this.renderNewBar();
    const note = this.box.querySelector(".feed-empty");
    if (note) note.textContent = t("feed.empty");
  }

  // --- actions --------------------------------------------------------------------------------
  async ack(id, note) {
    const body = note ? { note } : {};
    const detail = await api(`/api/v1/alerts/${encodeURIComponent(id)}/ack`, { method: "POST", body });
    this.dash.addAlert(detail, { own: true });
    const panels = this.dash.panels;
    if (panels.current?.type === "alert" && panels.current.id === id) panels.renderAlert(detail);
    return detail;
  }

  openIncident(id) {
    // The incident workspace (js/incidents.js) puts its own hook on the dashboard.
    if (typeof this.dash.openIncident === "function") return this.dash.openIncident(id);
    return this.showIncident(id);
  }

  async showIncident(id) {
    const i = await api(`/api/v1/incidents/${encodeURIComponent(id)}`);
    const rows = [
      [t("triage.incident.number"), i.number],
      [t("triage.incident.state"), t(`triage.state.${i.state}`)],
      [t("triage.incident.category"), i.category],
      [t("triage.incident.cell"), i.cell_id || "—"],
      [t("triage.incident.department"), i.department_id || "—"],
      [t("triage.incident.assignee"), i.assignee || "—"],
      [t("triage.incident.alerts"), String(i.alert_count)],
      [t("alert.time"), formatTime(i.created_at)],
    ];
    const box = this.dash.panels.openDetail("incident", id, [
      h("p", { class: "detail-title" }, severityBadge(i.level), " ", i.title),
      h("dl", { class: "kv" }, rows.map(([k, v]) => [h("dt", null, k), h("dd", null, v)])),
      i.description ? h("p", null, i.description) : null,
    ]);
    box.focus();
  }
}

// One part of the feed (incidents, criticals, the other alerts): its rows by id, its
// cursor into the hub's list and the hub's count for the same query.
class Section {
  constructor(feed, id, path, query, heading = id) {
    this.feed = feed;
    this.id = id;
    this.path = path;
    this.query = query;
    this.heading = heading;
    this.items = new Map();
    this.cursor = null;
    this.total = null;
    this.loading = false;
    this.list = h("ol", { class: `feed-section-list feed-${id}-list` });
    this.head = h("h3", { class: "feed-section-head", id: `feed-head-${id}` });
    this.more = h("button", { type: "button", class: "feed-more", hidden: true });
    this.more.addEventListener("click", () => this.nextPage());
    this.el = h("section", { class: `feed-section feed-${id}`, "aria-labelledby": `feed-head-${id}` },
      this.head, this.list, this.more);
  }

  node() {
    this.renderHead();
    this.renderMore();
    return this.el;
  }

  async fetchPage() {
    const q = new URLSearchParams(this.query);
    q.set("limit", String(PAGE));
    if (this.cursor) q.set("cursor", this.cursor);
    const page = await api(`${this.path}?${q}`);
    this.cursor = page.next_cursor;
    return page.items;
  }

  async firstPage() {
    for (const item of await this.fetchPage()) this.append(item);
  }

  async nextPage() {
    if (this.loading || !this.cursor) return;
    this.loading = true;
    try {
      const items = await this.fetchPage();
      for (const item of items) if (!this.items.has(item.id)) this.append(item);
    } finally {
      this.loading = false;
    }
    this.renderMore();
    this.feed.renderEmpty();
  }

  async count() {
    const path = this.path === "/api/v1/alerts" ? "/api/v1/alerts/count" : "/api/v1/incidents/count";
    const { total } = await api(`${path}?${this.query}`);
    return total;
  }

  // Whether a row's data still belongs here (after an update).
  accepts(d) {
    const q = this.query;
    if (this.id === "incidents") return q.getAll("state").includes(d.state) && (!q.get("level") || q.get("level") === d.level);
    if (q.get("status") === "new" && !isOpenAlert(d)) return false;
    return true;
  }

  // Whether a new live item belongs here, as far as the page can tell (the filters the event
  // carries); null filters of cell and department are the hub's to check.
  takes(item) {
    const q = this.query;
    const d = item.data;
    if ((item.type === "incident") !== (this.id === "incidents")) return false;
    if (q.get("cell") || q.get("department")) {
      if (item.type !== "incident") return false;
      if (q.get("cell") && q.get("cell") !== d.cell_id) return false;
      if (q.get("department") && q.get("department") !== d.department_id) return false;
    }
    const since = q.get("since");
    if (item.type === "incident") {
      if (q.get("kind") || q.get("device")) return false;
      return this.accepts(d) && (!since || new Date(d.created_at) >= new Date(since));
    }
    if (q.has("severity") && !q.getAll("severity").includes(d.severity)) return false;
    if (q.get("kind") && q.get("kind") !== d.kind) return false;
    if (q.get("device") && q.get("device") !== d.device) return false;
    if (since && new Date(d.ts) < new Date(since)) return false;
    return this.accepts(d);
  }

  row(d) {
    const li = h("li", { "data-id": d.id });
    const row = { data: d, el: li, leaving: false };
    this.draw(row);
    return row;
  }

  append(d) {
    const row = this.row(d);
    this.items.set(d.id, row);
    this.list.append(row.el);
  }

  prepend(d) {
    if (this.items.has(d.id)) return;
    // Newest first by id (UUIDv7): a late arrival goes where the hub's list has it, and one
    // older than every loaded row is left to "show more" (the hub pages it).
    const later = [...this.list.children].find((li) => li.dataset.id < d.id);
    if (!later && this.cursor) {
      if (this.total != null) this.total += 1;
      return;
    }
    const row = this.row(d);
    this.items.set(d.id, row);
    this.list.insertBefore(row.el, later || null);
    if (this.total != null) this.total += 1;
  }

  remove(id) {
    const row = this.items.get(id);
    if (!row) return;
    row.el.remove();
    this.items.delete(id);
    if (this.total != null) this.total = Math.max(0, this.total - 1);
  }

  // Redrawn in place; the focus stays in the row (its first button) if it was there.
  redraw(row) {
    const had = row.el.contains(document.activeElement);
    this.draw(row);
    if (had) row.el.querySelector("button")?.focus();
  }

  draw(row) {
    if (this.id === "incidents") this.drawIncident(row);
    else this.drawAlert(row);
  }

  drawIncident(row) {
    const i = row.data;
    const open = h("button", { type: "button", class: "incident-open" },
      severityBadge(i.level), " ",
      h("span", { class: "incident-number" }, i.number), " ",
      h("span", { class: "alert-title" }, i.title || ""),
      h("span", { class: "alert-meta" },
        [t(`triage.state.${i.state}`), i.cell_id, t("triage.incident.alert_count", { n: i.alert_count })]
          .filter(Boolean).join(" · ")));
    open.addEventListener("click", () => this.feed.openIncident(i.id));
    const sev = LEVELS.has(i.level) ? i.level : "info";
    row.el.className = `incident-item sevrow-${sev}`;
    fill(row.el, open);
  }

  drawAlert(row) {
    const a = row.data;
    const feed = this.feed;
    const acked = !isOpenAlert(a);
    const sev = severityBadge(a.severity);
    const open = h("button", { type: "button", class: "alert-open" },
      sev, " ",
      h("span", { class: "alert-title" }, alertTitle(a)),
      a.title ? h("span", { class: "alert-note" }, a.title) : null,
      h("span", { class: "alert-meta" }, `${t(`alert_kind.${a.kind}`)} · ${a.device ?? ""} · `,
        h("time", { datetime: a.ts }, formatTime(a.ts)),
        a.incident_number ? ` · ${t("triage.in_incident", { number: a.incident_number })}` : null),
      acked ? h("span", { class: "acked-by" }, t("alert.acked_by", { who: a.acknowledged_by || "" })) : null);
    open.addEventListener("click", () => feed.dash.panels.showAlert(a.id));
    let ack = null;
    if (feed.can("alerts:ack") && !acked) {
      ack = h("button", { type: "button", class: "ack" }, t("alert.ack"));
      ack.addEventListener("click", () => feed.ack(a.id).catch((err) => console.error("ack:", err)));
    }
    // The row's severity class comes from the badge (a known severity), never from the value.
    const sevClass = sev.classList[1].replace("sev-", "sevrow-");
    row.el.className = `alert-item ${sevClass}${acked ? " is-acked" : ""}`;
    fill(row.el, open, ack);
  }

  renderHead() {
    const n = this.total;
    fill(this.head, t(`triage.section.${this.heading}`), " ",
      h("span", { class: "count" }, n == null ? "…" : String(n)));
    this.el.hidden = this.items.size === 0 && !this.cursor;
  }

  renderMore() {
    const left = this.total == null ? null : Math.max(0, this.total - this.items.size);
    this.more.hidden = !this.cursor;
    this.more.textContent = left ? t("triage.show_more", { n: left }) : t("triage.show_more_some");
    this.renderHead();
  }
}
