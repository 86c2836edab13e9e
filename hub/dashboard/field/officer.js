// The officer's view of the field page ("My dispatches"): the phone as a HUD for an officer
// without glasses, or beside them. The officer's open dispatches (GET /api/v1/dispatches/mine),
// most urgent first; each card says what happened (kind, severity in colour AND words), how long
// ago, what the officer is asked to do, and where: an arrow and a distance from the phone's own
// position, turned by the phone's compass when it has one (else the bearing from north, and the
// card says so). Big answer buttons send the officer's answer to the hub; a switch puts them on
// or off duty. Live `dispatch` events refresh the list; a poll covers a stream that is down or
// refused. Like "My tasks", this needs the hub: offline, the list says so.
// A dispatch sent to verify a confirmed face match carries that match (as an officer may see
// it: entry id, camera, time, how many reviewers confirmed; never the entry's label or the face
// crop): the card says identity is verified by lawful means only, shows the camera frame the
// reviewers confirmed, and offers three big outcome buttons with a short note
// (POST /api/v1/matches/{id}/outcome); once recorded, the outcome replaces the buttons.
import { api } from "/ui/js/api.js";
import { h, fill } from "/ui/js/dom.js";
import { t, formatTime, formatAgo } from "/ui/js/i18n.js";
import { LiveStream } from "/ui/js/live.js";
import { byUrgency, compassHeading, distanceParts, pointTo } from "/ui/js/bearing.js";

export const ANSWERS = ["acknowledge", "on_my_way", "arrived", "verify", "reject", "need_backup"];
const SEVERITIES = ["critical", "high", "medium", "low", "info"];
const ACTIONS = ["attend", "verify", "assist", "observe"];
const STATES = ["notified", "acknowledged", "en_route", "on_scene", "verified", "rejected", "timed_out", "cancelled", "done"];
export const OUTCOMES = ["identity_confirmed", "not_the_person", "not_found"];
const NOTE_MAX = 500; // the hub's limit (hub/matches/service.py NOTE_MAX)
const POLL_MS = 10000;
const LIVE_REFRESH_MS = 200;
const TICK_MS = 15000;
const DUTY_KEY = "gw.field.duty";

const known = (list, v) => (list.includes(v) ? v : null);

// The arrow's rotation (degrees clockwise, 0 = straight up on the screen) and what it means,
// for a dispatch at `target` seen from `pose` ({lon, lat, headingDeg|null}); null when either
// position is missing. Pure: the test computes the same from known positions.
export function arrowFor(pose, target) {
  if (!pose || !target || target.lon == null || target.lat == null) return null;
  const p = pointTo(pose, target);
  return p.relative === null
    ? { rotationDeg: p.bearingDeg, relative: false, distanceM: p.distanceM }
    : { rotationDeg: p.relative, relative: true, distanceM: p.distanceM };
}

export class OfficerView {
  constructor(me, { list, note, duty, compass }) {
    this.me = me;
    this.list = list;
    this.note = note;
    this.duty = duty;
    this.compass = compass;
    this.items = [];
    this.pose = null; // {lon, lat, accuracy_m, headingDeg}
    this.heading = null;
    this.messages = new Map(); // dispatch id -> {text, cls}
    this.outcomeMessages = new Map(); // dispatch id -> {text, cls}
    this.notes = new Map(); // dispatch id -> the outcome note being typed (kept over re-renders)
    this.recording = new Set(); // dispatch ids whose outcome is on its way to the hub
    this.liveTimer = null;
    this.started = false;
  }

  start() {
    if (this.started) return;
    this.started = true;
    this.watchPosition();
    this.watchHeading();
    this.bindDuty();
    this.live = new LiveStream({
      layers: ["dispatch"],
      onEvent: (ev) => this.onLive(ev),
      onState: () => {},
      onResync: () => this.refresh(),
    });
    this.live.start();
    setInterval(() => {
      if (!document.hidden) this.refresh();
    }, POLL_MS);
    setInterval(() => this.renderTimes(), TICK_MS);
    window.addEventListener("online", () => this.refresh());
  }

  // --- the phone's position and heading -------------------------------------------------------
  watchPosition() {
    if (!navigator.geolocation) return;
    navigator.geolocation.watchPosition((pos) => {
      this.pose = {
        lon: pos.coords.longitude, lat: pos.coords.latitude, accuracy_m: pos.coords.accuracy, headingDeg: this.heading,
      };
      this.renderArrows();
    }, (err) => {
      console.warn("position:", err.message);
      this.renderArrows();
    }, { enableHighAccuracy: true, maximumAge: 5000 });
  }

  watchHeading() {
    const onOrientation = (ev) => {
      const heading = compassHeading(ev, screen.orientation?.angle ?? 0);
      if (heading === null) return;
      if (this.compass) this.compass.hidden = true; // the compass answers: nothing to ask
      this.heading = heading;
      if (this.pose) this.pose = { ...this.pose, headingDeg: heading };
      this.renderArrows();
    };
    // Chromium: absolute alpha on its own event; Safari: webkitCompassHeading on the plain one.
    window.addEventListener("deviceorientationabsolute", onOrientation);
    window.addEventListener("deviceorientation", onOrientation);
    // Safari asks the officer first, and only from a tap.
    const ask = globalThis.DeviceOrientationEvent?.requestPermission;
    if (typeof ask === "function" && this.compass) {
      this.compass.hidden = false;
      this.compass.addEventListener("click", async () => {
        try {
          await ask.call(globalThis.DeviceOrientationEvent);
        } catch (err) {
          console.warn("compass:", err);
        }
        this.compass.hidden = true;
      });
    }
  }

  // --- duty -------------------------------------------------------------------------------------
  bindDuty() {
    const stored = localStorage.getItem(DUTY_KEY);
    this.renderDuty(stored === null ? null : stored === "1");
    // The hub's word wins over the last state this phone saw (a commander may have changed it).
    api("/api/v1/me/duty")
      .then((officer) => {
        if (officer && typeof officer.on_duty === "boolean") {
          localStorage.setItem(DUTY_KEY, officer.on_duty ? "1" : "0");
          this.renderDuty(officer.on_duty);
        }
      })
      .catch((err) => console.warn("duty:", err));
    this.duty.addEventListener("click", async () => {
      const want = this.duty.getAttribute("aria-checked") !== "true";
      this.duty.disabled = true;
      try {
        const officer = await api("/api/v1/me/duty", { method: "PUT", body: { on_duty: want } });
        const on = officer && typeof officer.on_duty === "boolean" ? officer.on_duty : want;
        localStorage.setItem(DUTY_KEY, on ? "1" : "0");
        this.renderDuty(on);
        this.note.textContent = "";
      } catch (err) {
        this.note.textContent = t("officer.duty_failed", { reason: err.message });
      } finally {
        this.duty.disabled = false;
      }
    });
  }

  renderDuty(on) {
    this.duty.setAttribute("aria-checked", String(on === true));
    this.duty.dataset.duty = on === null ? "unknown" : on ? "on" : "off";
    this.duty.textContent = on === null ? t("officer.duty_unknown") : on ? t("officer.on_duty") : t("officer.off_duty");
  }

  // --- the list ---------------------------------------------------------------------------------
  onLive(ev) {
    const mine = ev.officer === this.me.username || ev.dispatch?.officer === this.me.username;
    if (!mine) return;
    clearTimeout(this.liveTimer);
    this.liveTimer = setTimeout(() => this.refresh(), LIVE_REFRESH_MS);
  }

  async refresh() {
    if (!navigator.onLine) {
      this.items = [];
      fill(this.list);
      this.note.textContent = t("officer.offline");
      return;
    }
    try {
      const items = await api("/api/v1/dispatches/mine");
      this.items = items.slice().sort(byUrgency);
      this.note.textContent = this.items.length ? "" : t("officer.empty");
      this.render();
    } catch (err) {
      this.note.textContent = t("officer.failed", { reason: err.message });
    }
  }

  render() {
    // A re-render keeps the focused control focused, and the caret in the note (a live refresh
    // lands mid-tap or mid-word).
    const focused = this.list.contains(document.activeElement) ? document.activeElement : null;
    const key = focused?.dataset.focus ? [focused.closest("li")?.dataset.id, focused.dataset.focus] : null;
    const caret = focused instanceof HTMLInputElement ? [focused.selectionStart, focused.selectionEnd] : null;
    fill(this.list, this.items.map((d) => this.card(d)));
    if (key) {
      const el = this.list.querySelector(`li[data-id="${CSS.escape(key[0] || "")}"] [data-focus="${CSS.escape(key[1])}"]`);
      el?.focus();
      if (caret && el instanceof HTMLInputElement) el.setSelectionRange(caret[0], caret[1]);
    }
    this.renderArrows();
    this.renderTimes();
  }

  card(d) {
    const sev = known(SEVERITIES, d.severity) || "info";
    const action = known(ACTIONS, d.action);
    const state = known(STATES, d.state);
    const msg = this.messages.get(d.id);
    const buttons = ANSWERS.map((a) => {
      const b = h("button", { type: "button", class: `answer answer-${a}`, "data-answer": a, "data-focus": `answer:${a}` }, t(`officer.answer.${a}`));
      b.addEventListener("click", () => this.answer(d, a, b));
      return b;
    });
    // A hand-sent verify dispatch may not name the alert: the match does.
    const alertId = d.alert_id || d.match?.alert_id;
    const evidence = alertId ? h("img", {
      class: "evidence", src: `/api/v1/alerts/${encodeURIComponent(alertId)}/evidence`,
      alt: t(d.match ? "officer.match.frame_alt" : "officer.evidence_alt"), loading: "lazy",
    }) : null;
    // No snapshot for this alert: the card does without (a 404 is not an error to show).
    evidence?.addEventListener("error", () => evidence.remove());
    return h("li", { class: `item dispatch sev-border-${sev}`, "data-id": d.id, "data-state": d.state },
      h("div", { class: "head" },
        d.incident_number ? h("span", { class: "number" }, d.incident_number) : null,
        h("span", { class: `sev sev-${sev}` }, t(`severity.${sev}`)),
        h("span", { class: "kind" }, d.kind ? t(`alert_kind.${d.kind}`) : ""),
        h("span", { class: "state", "data-state": d.state }, state ? t(`dispatchui.state.${state}`) : String(d.state))),
      d.title ? h("strong", { class: "title" }, d.title) : null,
      h("p", { class: "expected" }, action ? t(`officer.action.${action}`) : String(d.action)),
      h("p", { class: "hint since", "data-ts": d.issued_at || d.notified_at }),
      h("div", { class: "nav", "aria-live": "off" },
        h("span", { class: "arrow", role: "img" }, "↑"),
        h("span", { class: "nav-text" },
          h("span", { class: "distance" }),
          h("span", { class: "bearing-note hint" }))),
      evidence,
      d.match ? this.matchPart(d) : null,
      h("div", { class: "answers", role: "group", "aria-label": t("officer.answers") }, buttons),
      h("p", { class: `status ${msg?.cls || ""}`, role: "status" }, msg?.text || ""));
  }

  // The confirmed face match this dispatch is sent to verify: how (lawful means only), what
  // to verify against, and the outcome: three buttons and a note, or the outcome recorded.
  matchPart(d) {
    const m = d.match;
    const outcome = known(OUTCOMES, m.outcome);
    const msg = this.outcomeMessages.get(d.id);
    const fact = (label, value) => h("div", {}, h("dt", {}, t(label)), h("dd", {}, value));
    let record;
    if (m.outcome) {
      record = h("div", { class: "outcome-recorded", "data-outcome": m.outcome },
        h("strong", {}, t("officer.match.recorded", {
          outcome: outcome ? t(`review.outcome.${outcome}`) : String(m.outcome),
          by: m.outcome_by || "", at: formatTime(m.outcome_at),
        })),
        m.outcome_note ? h("p", { class: "outcome-note-text" }, m.outcome_note) : null);
    } else {
      const busy = this.recording.has(d.id);
      const note = h("input", {
        type: "text", class: "outcome-note", id: `outcome-note-${d.id}`, maxlength: String(NOTE_MAX),
        autocomplete: "off", "data-focus": "note", value: this.notes.get(d.id) || "",
      });
      note.disabled = busy;
      note.addEventListener("input", () => this.notes.set(d.id, note.value));
      const buttons = OUTCOMES.map((o) => {
        const b = h("button", { type: "button", class: `outcome outcome-${o}`, "data-outcome": o, "data-focus": `outcome:${o}` },
          t(`review.outcome.${o}`));
        b.disabled = busy;
        b.addEventListener("click", () => this.recordOutcome(d, o));
        return b;
      });
      record = h("div", { class: "outcome-form" },
        h("label", { for: note.id }, t("officer.match.note")),
        note,
        h("div", { class: "outcomes", role: "group", "aria-label": t("officer.match.outcomes") }, buttons));
    }
    return h("section", { class: "match-verify", "data-match": m.id, "aria-label": t("officer.match.title") },
      h("h3", {}, t("officer.match.title")),
      h("p", { class: "lawful" }, t("officer.match.lawful")),
      h("dl", { class: "reference" },
        fact("officer.match.entry", m.entry_id),
        fact("officer.match.camera", m.device),
        fact("officer.match.seen", formatTime(m.seen_at)),
        fact("officer.match.reviewed", t("officer.match.confirmations", { n: m.confirmations }))),
      record,
      h("p", { class: `outcome-status status ${msg?.cls || ""}`, role: "status" }, msg?.text || ""));
  }

  async recordOutcome(d, outcome) {
    // One request at a time per match: a second tap while the first is on its way sends
    // nothing (the hub refuses a second outcome anyway, and says so).
    if (this.recording.has(d.id)) return;
    this.recording.add(d.id);
    this.outcomeMessages.delete(d.id);
    this.render();
    const note = (this.notes.get(d.id) || "").trim();
    try {
      const fresh = await api(`/api/v1/matches/${encodeURIComponent(d.match.id)}/outcome`, {
        method: "POST", body: { outcome, note },
      });
      this.notes.delete(d.id);
      this.outcomeMessages.set(d.id, { text: t("officer.match.saved"), cls: "ok" });
      const i = this.items.findIndex((x) => x.id === d.id);
      if (i >= 0 && fresh) this.items[i] = { ...this.items[i], match: { ...this.items[i].match, ...fresh } };
    } catch (err) {
      this.outcomeMessages.set(d.id, { text: t("officer.match.refused", { reason: err.message }), cls: "error" });
    } finally {
      this.recording.delete(d.id);
    }
    this.render();
    // The hub's word: after a refusal (recorded already, by another officer or a reviewer)
    // the card shows the outcome the hub holds.
    this.refresh();
  }

  // Only the arrows and distances change with the phone's position and heading: the cards (and
  // the button under the officer's thumb) stay.
  renderArrows() {
    for (const li of this.list.querySelectorAll("li[data-id]")) {
      const d = this.items.find((x) => x.id === li.dataset.id);
      if (!d) continue;
      const arrow = li.querySelector(".arrow");
      const dist = li.querySelector(".distance");
      const note = li.querySelector(".bearing-note");
      const a = arrowFor(this.pose, d.location);
      if (!d.location) {
        arrow.hidden = true;
        dist.textContent = t("officer.no_location");
        note.textContent = "";
        continue;
      }
      if (!a) {
        arrow.hidden = true;
        dist.textContent = t("officer.waiting_position");
        note.textContent = "";
        continue;
      }
      const deg = Math.round(a.rotationDeg * 10) / 10;
      arrow.hidden = false;
      arrow.dataset.rotation = String(deg);
      arrow.dataset.relative = String(a.relative);
      arrow.style.setProperty("transform", `rotate(${deg}deg)`);
      const { key, n } = distanceParts(a.distanceM);
      dist.textContent = t(key, { n });
      note.textContent = a.relative ? t("officer.relative", { deg: Math.round(deg) }) : t("officer.from_north", { deg: Math.round(deg) });
      arrow.setAttribute("aria-label", note.textContent);
    }
  }

  renderTimes() {
    for (const el of this.list.querySelectorAll(".since[data-ts]")) {
      const d = this.items.find((x) => x.id === el.closest("li")?.dataset.id);
      el.textContent = [
        t("officer.since", { ago: formatAgo(el.dataset.ts) }),
        d?.respond_by ? t("officer.respond_by", { at: formatTime(d.respond_by) }) : null,
      ].filter(Boolean).join(" · ");
    }
  }

  async answer(d, answer, button) {
    const body = { answer };
    if (this.pose) {
      body.location = { lon: this.pose.lon, lat: this.pose.lat };
      if (Number.isFinite(this.pose.accuracy_m)) body.location.accuracy_m = this.pose.accuracy_m;
    }
    button.disabled = true;
    try {
      const fresh = await api(`/api/v1/dispatches/${encodeURIComponent(d.id)}/answers`, { method: "POST", body });
      this.messages.set(d.id, { text: t("officer.answered", { answer: t(`officer.answer.${answer}`) }), cls: "ok" });
      const i = this.items.findIndex((x) => x.id === d.id);
      if (i >= 0 && fresh) this.items[i] = { ...this.items[i], ...fresh };
      this.render();
      this.refresh();
    } catch (err) {
      button.disabled = false;
      this.messages.set(d.id, { text: t("officer.answer_failed", { reason: err.message }), cls: "error" });
      this.render();
    }
  }

  relabel() {
    const on = this.duty.dataset.duty;
    this.renderDuty(on === "unknown" ? null : on === "on");
    this.render();
  }
}
