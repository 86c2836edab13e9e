// The review page of possible face matches (/ui/review.html): the queue, a match's face crop
// and frame snapshot side by side (the hub audits every view), confirm or reject with a note,
// the second reviewer's state, and the officer's outcome. Every match is a *possible* match
// until people decide it; officers verify it by lawful means (identity documents checked in
// person, no further biometric capture).
import { api, ApiError } from "./api.js";
import { fill, h } from "./dom.js";
import { formatDateTime, onLanguage, t, zoneLabel } from "./i18n.js";
import { LiveStream } from "./live.js";
import { startPage } from "./page.js";

const $ = (sel) => document.querySelector(sel);
const OUTCOMES = ["identity_confirmed", "not_the_person", "not_found"];
const LIVE_DEBOUNCE_MS = 500;

function score(value) {
  return Number(value).toFixed(2);
}

class Review {
  constructor(config, me) {
    this.config = config;
    this.me = me;
    this.perms = new Set(me.permissions);
    this.items = [];
    this.selected = null;
    this.pending = null;
  }

  can(p) {
    return this.perms.has(p);
  }

  say(text, kind = "info") {
    const el = $("#review-message");
    el.dataset.kind = kind;
    el.textContent = text;
  }

  async load() {
    const status = $("#review-status").value;
    const page = await api(`/api/v1/matches?status=${encodeURIComponent(status)}&limit=200`);
    this.items = page.items;
    if (this.selected && !this.items.some((m) => m.id === this.selected.id)) {
      // Decided meanwhile (here or by another reviewer): show its final state.
      this.selected = await api(`/api/v1/matches/${encodeURIComponent(this.selected.id)}`);
    } else if (this.selected) {
      this.selected = this.items.find((m) => m.id === this.selected.id);
    }
    this.render();
  }

  label(m) {
    return m.entry_label ? `${m.entry_label} (${m.entry_id})` : m.entry_id;
  }

  render() {
    $("#review").setAttribute("aria-busy", "false");
    fill($("#review-list"), this.items.length
      ? this.items.map((m) => h("li", null, h("button", {
        type: "button",
        class: "review-item",
        "data-id": m.id,
        "aria-current": this.selected?.id === m.id ? "true" : "false",
      },
      h("strong", null, t("review.possible_match_of", { entry: this.label(m) })), h("br"),
      h("span", { class: "score" }, t("review.score_line", { score: score(m.score), threshold: score(m.threshold) })), " · ",
      m.device, " · ", h("time", { datetime: m.seen_at }, formatDateTime(m.seen_at)))))
      : h("li", { class: "review-hint" }, t("review.queue_empty")));
    for (const b of document.querySelectorAll(".review-item")) {
      b.addEventListener("click", () => {
        this.selected = this.items.find((m) => m.id === b.dataset.id) || null;
        this.say("");
        this.render();
        $("#review-detail").focus();
      });
    }
    this.renderDetail();
  }

  renderDetail() {
    const m = this.selected;
    $("#review-empty").hidden = Boolean(m);
    if (!m) {
      fill($("#review-body"));
      return;
    }
    const id = encodeURIComponent(m.id);
    const field = (key, value) => [h("dt", null, t(key)), h("dd", null, value ?? "—")];
    fill($("#review-body"),
      h("p", { class: "review-hint" }, t("review.possible_hint")),
      h("dl", { class: "review-fields" },
        field("review.field.entry", this.label(m)),
        field("review.field.category", m.category),
        field("review.field.score", t("review.score_line", { score: score(m.score), threshold: score(m.threshold) })),
        field("review.field.device", m.device),
        field("review.field.seen_at", h("time", { datetime: m.seen_at }, formatDateTime(m.seen_at))),
        field("review.field.status", t(`review.status.${m.status}`)),
        field("review.field.reviews", t("review.reviews_state", { n: m.reviews.filter((r) => r.decision === "confirm").length, needed: m.reviews_needed })),
        m.incident_number ? field("review.field.incident", m.incident_number) : null,
        m.outcome ? field("review.field.outcome", `${t(`review.outcome.${m.outcome}`)} · ${m.outcome_by}`) : null),
      m.crop_deleted_at
        ? h("p", { class: "review-hint", id: "review-images-deleted" }, t("review.images_deleted"))
        : h("div", { class: "review-images" },
          h("figure", null, h("img", { id: "review-crop", src: `/api/v1/matches/${id}/crop`, alt: t("review.crop") }),
            h("figcaption", null, t("review.crop"))),
          h("figure", null, h("img", { id: "review-snapshot", src: `/api/v1/matches/${id}/snapshot`, alt: t("review.snapshot") }),
            h("figcaption", null, t("review.snapshot")))),
      m.crop_deleted_at ? null : h("p", { class: "review-hint" }, t("review.images_audited")),
      h("ul", { class: "review-reviews" }, m.reviews.map((r) => h("li", { class: "review-decision" },
        t(`review.decision.${r.decision}`), " · ", r.reviewer, " · ", h("time", { datetime: r.at }, formatDateTime(r.at)),
        r.note ? [" · ", r.note] : null))),
      this.reviewForm(m),
      this.outcomeForm(m));
    this.bind(m);
  }

  reviewForm(m) {
    if (m.status !== "pending" || !this.can("matches:review")) return null;
    if (m.reviews.some((r) => r.reviewer === this.me.username)) {
      return h("p", { class: "review-hint", id: "review-waiting" }, t("review.waiting_second"));
    }
    return h("form", { id: "review-form", class: "review-form" },
      h("label", { for: "review-note" }, t("review.note")),
      h("textarea", { id: "review-note", rows: 2, maxlength: 500 }),
      h("div", { class: "buttons" },
        h("button", { type: "button", id: "review-confirm", "data-decision": "confirm" }, t("review.confirm")),
        h("button", { type: "button", id: "review-reject", "data-decision": "reject" }, t("review.reject"))));
  }

  outcomeForm(m) {
    if (m.status !== "confirmed" || m.outcome || !this.can("matches:review")) return null;
    return h("form", { id: "outcome-form", class: "review-form" },
      h("p", { class: "review-hint" }, t("review.lawful_means")),
      h("label", { for: "outcome-select" }, t("review.outcome_label")),
      h("select", { id: "outcome-select" }, OUTCOMES.map((o) => h("option", { value: o }, t(`review.outcome.${o}`)))),
      h("label", { for: "outcome-note" }, t("review.note")),
      h("textarea", { id: "outcome-note", rows: 2, maxlength: 500 }),
      h("div", { class: "buttons" }, h("button", { type: "submit", id: "outcome-save" }, t("review.outcome_save"))));
  }

  bind(m) {
    const id = encodeURIComponent(m.id);
    for (const b of document.querySelectorAll("#review-form button")) {
      b.addEventListener("click", () => this.send(`/api/v1/matches/${id}/reviews`, {
        decision: b.dataset.decision, note: $("#review-note").value,
      }, b.dataset.decision === "confirm" ? "review.sent_confirm" : "review.sent_reject"));
    }
    const outcome = $("#outcome-form");
    if (outcome) {
      outcome.addEventListener("submit", (ev) => {
        ev.preventDefault();
        this.send(`/api/v1/matches/${id}/outcome`, {
          outcome: $("#outcome-select").value, note: $("#outcome-note").value,
        }, "review.sent_outcome");
      });
    }
  }

  async send(path, body, doneKey) {
    try {
      this.selected = await api(path, { method: "POST", body });
      this.say(t(doneKey));
    } catch (err) {
      this.say(err instanceof ApiError ? err.message : String(err), "error");
    }
    await this.load();
  }

  soon() {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = null;
      this.load().catch((err) => console.error("review:", err));
    }, LIVE_DEBOUNCE_MS);
  }

  start() {
    $("#review-status").addEventListener("change", () => {
      this.selected = null;
      this.load().catch((err) => console.error("review:", err));
    });
    onLanguage(() => this.render());
    if (!this.can("live:read")) return;
    this.live = new LiveStream({
      layers: ["matches"],
      onEvent: () => this.soon(),
      onState: (state) => {
        const el = $("#review-conn");
        el.dataset.state = state;
        el.textContent = t(`conn.${state}`);
      },
      onResync: () => this.soon(),
    });
    this.live.start();
  }
}

async function boot() {
  const started = await startPage({ signin: "#review-signin" });
  if (!started) return;
  const { me, config } = started;
  $("#review-site").textContent = config.site || t("header.all_sites");
  $("#review-zone").textContent = zoneLabel();
  if (!me.permissions.includes("matches:read")) {
    $("#review-denied").hidden = false;
    return;
  }
  $("#review").hidden = false;
  const review = new Review(config, me);
  await review.load();
  review.start();
}

boot().catch((err) => console.error("review:", err));
