// Alert headlines in the operator's language. A device's own title is free text in whatever
// language its configuration was written in: the headline is made here from the alert's kind
// and where it happened, and the device's text is shown beside it as a note.
import { t } from "./i18n.js";

export const ALERT_KINDS = [
  "battery_low", "cloned_device", "face_match", "geofence_entry", "geofence_exit", "intrusion",
  "line_crossing", "loitering", "perimeter_breach", "signal_lost", "sos", "tamper",
];

// The alert's headline in the operator's language, from its kind and where it happened.
export function alertTitle(a) {
  const where = a.zone || a.entity || a.device || "";
  if (ALERT_KINDS.includes(a.kind)) return t(`triage.title.${a.kind}`, { where });
  return a.title || a.kind || "";
}
