// One line in the header that says what other operators just did (an acknowledgement, an
// assignment, a state change, a comment), announced politely to screen readers. It follows the
// live event bus, so changes made on any hub replica show here without a reload.
import { t } from "./i18n.js";
import { onLiveEvent } from "./live.js";

const INCIDENT_CHANGES = {
  "incident.open": "live.incident_opened",
  "incident.assign": "live.incident_assigned",
  "incident.start": "live.incident_state",
  "incident.resolve": "live.incident_state",
  "incident.close": "live.incident_state",
  "incident.reopen": "live.incident_state",
  "incident.comment": "live.incident_comment",
  "incident.edit": "live.incident_edited",
};
const STATES = ["new", "assigned", "in_progress", "resolved", "closed"];

export class Activity {
  constructor(el, me) {
    this.el = el;
    this.me = me; // this operator's own acknowledgements and notes need no announcement
    onLiveEvent("incidents", (ev) => this.incident(ev));
  }

  incident(ev) {
    const key = Object.hasOwn(INCIDENT_CHANGES, ev.change) ? INCIDENT_CHANGES[ev.change] : null;
    if (!key) return; // alerts joining an incident are ingest, not a person's change
    const state = STATES.includes(ev.state) ? t(`live.state.${ev.state}`) : String(ev.state ?? "");
    this.say(t(key, { number: ev.number ?? "", who: ev.assignee ?? "", state }));
  }

  alert(ev) {
    if ((ev.acknowledged_by === this.me && ev.change === "ack") || ev.note?.author === this.me) return;
    if (ev.change === "ack") this.say(t("live.alert_acked", { who: ev.acknowledged_by ?? "" }));
    else if (ev.change === "note") this.say(t("live.alert_note", { who: ev.note?.author ?? "" }));
  }

  say(text) {
    this.el.textContent = text;
    this.el.title = text;
  }
}
