// The watchlist page (/ui/watchlists.html): entries by status with their legal basis and
// expiry always shown, the enrolment form (photo, governance fields, an expiry bounded by the
// hub's maximum), approve / refuse for approvers (disabled, with the reason, on one's own
// entries: the hub refuses them too), revoke with a reason, and the enrolment photo on
// request (each view is audited by the hub). A refusal is shown as a sentence: the catalogue's
// for its code, else the hub's own.
import { api, ApiError } from "./api.js";
import { fill, h } from "./dom.js";
import { formatDateTime, fromZoneInput, onLanguage, t, toZoneInput } from "./i18n.js";
import { startPage } from "./page.js";

const $ = (sel) => document.querySelector(sel);
const BASE = "/api/v1/watchlists";
const STATUSES = ["pending", "active", "refused", "revoked", "expired"];
const DAY_MS = 86400000;

// The sentence for a refusal: the catalogue's (by the hub's code) when it has one.
export function refusalText(err) {
  if (err instanceof ApiError && err.code) {
    const key = `watchlists.refusal.${err.code}`;
    const text = t(key);
    if (text !== key) return text;
  }
  return err instanceof ApiError ? err.message : t("watchlists.failed");
}

function categoryName(id) {
  const key = `watchlists.category.${id}`;
  const text = t(key);
  return text === key ? id : text;
}

class WatchlistPage {
  constructor(me, settings) {
    this.me = me;
    this.perms = new Set(me.permissions);
    this.settings = settings;
    this.status = "pending";
    this.entries = [];
    this.photoUrl = null;
  }

  can(p) {
    return this.perms.has(p);
  }

  init() {
    $("#wl-who").textContent = this.me.display_name || this.me.username;
    $("#wl-enrol").hidden = !this.can("watchlist:enrol");
    $("#wl-photo").addEventListener("change", () => {
      const file = $("#wl-photo").files[0];
      $("#wl-photo-name").textContent = file ? file.name : "";
    });
    $("#wl-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.enrol().catch((err) => console.error("enrol:", err));
    });
    $("#wl-photo-close").addEventListener("click", () => this.closePhoto());
    this.relabel();
    onLanguage(() => this.relabel());
  }

  relabel() {
    fill($("#wl-category"), this.settings.categories.map((c) => h("option", { value: c }, categoryName(c))));
    fill($("#wl-tabs"), STATUSES.map((s) => {
      const b = h("button", { type: "button", "data-status": s, "aria-pressed": String(s === this.status) }, t(`watchlists.status.${s}`));
      b.addEventListener("click", () => {
        this.status = s;
        this.relabel();
        this.load().catch((err) => console.error("entries:", err));
      });
      return b;
    }));
    this.boundExpiry();
    this.render();
  }

  // The date picker allows tomorrow up to the last day whose 00:00 (site time) is within
  // max_expiry_days; the hub checks the same bound.
  boundExpiry() {
    const now = Date.now();
    const input = $("#wl-expiry");
    input.min = toZoneInput(new Date(now + DAY_MS)).slice(0, 10);
    input.max = toZoneInput(new Date(now + this.settings.max_expiry_days * DAY_MS)).slice(0, 10);
    if (!input.value) input.value = toZoneInput(new Date(now + 30 * DAY_MS)).slice(0, 10);
    $("#wl-expiry-hint").textContent = t("watchlists.expiry_hint", { days: this.settings.max_expiry_days, max: input.max });
  }

  async load() {
    const page = await api(`${BASE}/entries?${new URLSearchParams({ status: this.status, limit: "200" })}`);
    this.entries = page.items;
    this.render();
  }

  say(el, text, ok) {
    el.textContent = text;
    el.classList.toggle("is-error", !ok);
    el.classList.toggle("is-ok", ok);
  }

  async enrol() {
    const out = $("#wl-form-result");
    const file = $("#wl-photo").files[0];
    if (!file) {
      this.say(out, t("watchlists.refusal.photo.missing"), false);
      return;
    }
    const expiry = fromZoneInput(`${$("#wl-expiry").value}T00:00`);
    const form = new FormData();
    form.append("photo", file, file.name);
    form.append("label", $("#wl-label").value);
    form.append("category", $("#wl-category").value);
    form.append("reason", $("#wl-reason").value);
    form.append("legal_basis", $("#wl-legal").value);
    form.append("expires_at", Number.isNaN(expiry.getTime()) ? "" : expiry.toISOString());
    const button = $("#wl-submit");
    button.disabled = true;
    this.say(out, t("watchlists.checking"), true);
    try {
      const entry = await api(`${BASE}/entries`, { method: "POST", body: form });
      this.say(out, t("watchlists.enrolled_ok", { label: entry.label }), true);
      $("#wl-form").reset();
      $("#wl-photo-name").textContent = "";
      this.boundExpiry();
      this.status = "pending";
      this.relabel();
      await this.load();
    } catch (err) {
      this.say(out, refusalText(err), false);
    } finally {
      button.disabled = false;
    }
  }

  async act(entry, verb, reason) {
    const out = $("#wl-action-result");
    try {
      const body = verb === "approve" ? undefined : { reason };
      await api(`${BASE}/entries/${encodeURIComponent(entry.id)}/${verb}`, { method: "POST", body });
      this.say(out, t(`watchlists.done.${verb}`, { label: entry.label }), true);
      await this.load();
    } catch (err) {
      this.say(out, refusalText(err), false);
    }
  }

  async showPhoto(entry) {
    const res = await api(`${BASE}/entries/${encodeURIComponent(entry.id)}/photo`, { raw: true });
    const blob = await res.blob();
    this.closePhoto();
    this.photoUrl = URL.createObjectURL(blob);
    const img = $("#wl-photo-img");
    img.src = this.photoUrl;
    img.alt = t("watchlists.photo_alt", { label: entry.label });
    $("#wl-photo-view").hidden = false;
  }

  closePhoto() {
    if (this.photoUrl) URL.revokeObjectURL(this.photoUrl);
    this.photoUrl = null;
    $("#wl-photo-img").removeAttribute("src");
    $("#wl-photo-view").hidden = true;
  }

  render() {
    $("#wl-empty").hidden = this.entries.length > 0;
    fill($("#wl-list"), this.entries.map((e) => this.item(e)));
  }

  item(e) {
    const own = e.enrolled_by === this.me.username;
    const facts = [
      ["watchlists.legal_basis_short", e.legal_basis],
      ["watchlists.expires_at", formatDateTime(e.expires_at)],
      ["watchlists.reason", e.reason],
      ["watchlists.enrolled", t("watchlists.by_at", { who: e.enrolled_by, at: formatDateTime(e.enrolled_at) })],
    ];
    if (e.approved_by) facts.push(["watchlists.approved", t("watchlists.by_at", { who: e.approved_by, at: formatDateTime(e.approved_at) })]);
    if (e.refused_by) facts.push(["watchlists.refused", t("watchlists.by_because", { who: e.refused_by, why: e.refuse_reason || "" })]);
    if (e.revoked_by) facts.push(["watchlists.revoked", t("watchlists.by_because", { who: e.revoked_by, why: e.revoke_reason || "" })]);
    const reasonInput = h("input", { class: "wl-reason-input", maxlength: "1000", "aria-label": t("watchlists.action_reason"), placeholder: t("watchlists.action_reason") });
    const actions = [];
    if (e.status === "pending" && this.can("watchlist:approve")) {
      const why = own ? t("watchlists.own_entry") : null;
      const approve = h("button", { type: "button", class: "primary wl-approve", disabled: own, title: why }, t("watchlists.approve"));
      const refuse = h("button", { type: "button", class: "wl-refuse", disabled: own, title: why }, t("watchlists.refuse"));
      approve.addEventListener("click", () => this.act(e, "approve"));
      refuse.addEventListener("click", () => this.act(e, "refuse", reasonInput.value));
      actions.push(approve, refuse);
      if (own) actions.push(h("span", { class: "wl-why" }, why));
    }
    if ((e.status === "pending" || e.status === "active") && this.can("watchlist:enrol")) {
      const revoke = h("button", { type: "button", class: "wl-revoke" }, t("watchlists.revoke"));
      revoke.addEventListener("click", () => this.act(e, "revoke", reasonInput.value));
      actions.push(revoke);
    }
    if (actions.some((a) => a.classList?.contains("wl-refuse") || a.classList?.contains("wl-revoke"))) actions.unshift(reasonInput);
    const view = h("button", { type: "button", class: "wl-view" }, t("watchlists.view_photo"));
    view.addEventListener("click", () => this.showPhoto(e).catch((err) => this.say($("#wl-action-result"), refusalText(err), false)));
    actions.push(view);
    return h("li", { class: "wl-entry", "data-id": e.id, "data-status": e.status },
      h("div", { class: "wl-entry-head" },
        h("strong", null, e.label),
        h("span", { class: "wl-category" }, categoryName(e.category)),
        h("span", { class: "wl-status" }, t(`watchlists.status.${e.status}`))),
      h("dl", { class: "wl-facts" }, facts.map(([k, v]) => [h("dt", null, t(k)), h("dd", null, v)])),
      h("div", { class: "wl-actions" }, actions));
  }
}

async function boot() {
  const started = await startPage({ signin: "#wl-signin", main: "#wl" });
  if (!started) return;
  const { me } = started;
  const settings = await api(`${BASE}/config`);
  const page = new WatchlistPage(me, settings);
  page.init();
  await page.load();
  $("#wl").setAttribute("aria-busy", "false");
}

boot().catch((err) => console.error("watchlists:", err));
