// Where a target lies from a position, and which dispatch comes first: pure functions shared by
// the dispatch panel (how far each officer is from the incident) and the officer's phone HUD
// (the arrow). The same formulas as the glasses (edge/glasses/view.py: distance_m, bearing_deg,
// relative_bearing, HudItem.urgency), so the phone and the glasses point the same way.

const EARTH_RADIUS_M = 6371008.8;
const rad = (deg) => (deg * Math.PI) / 180;
const SEVERITY_RANK = { critical: 0, high: 1, medium: 2, low: 3, info: 4 };
// Dispatches the officer has not answered yet come before those they are already working.
const UNANSWERED = new Set(["notified"]);

// Great-circle distance (haversine) in metres.
export function distanceM(lon1, lat1, lon2, lat2) {
  const p1 = rad(lat1);
  const p2 = rad(lat2);
  const dp = p2 - p1;
  const dl = rad(lon2 - lon1);
  const a = Math.sin(dp / 2) ** 2 + Math.cos(p1) * Math.cos(p2) * Math.sin(dl / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
}

// Initial great-circle bearing from point 1 to point 2, degrees clockwise from north, [0, 360).
export function bearingDeg(lon1, lat1, lon2, lat2) {
  const p1 = rad(lat1);
  const p2 = rad(lat2);
  const dl = rad(lon2 - lon1);
  const y = Math.sin(dl) * Math.cos(p2);
  const x = Math.cos(p1) * Math.sin(p2) - Math.sin(p1) * Math.cos(p2) * Math.cos(dl);
  return normalise((Math.atan2(y, x) * 180) / Math.PI);
}

export function normalise(deg) {
  const d = deg % 360;
  return d < 0 ? d + 360 : d;
}

// {distanceM, bearingDeg, relative}: `relative` is the bearing from where the phone faces (0
// ahead, 90 to the right) when its heading is known, else null (the HUD then shows the
// absolute bearing from north and says so).
export function pointTo(from, to) {
  const dist = distanceM(from.lon, from.lat, to.lon, to.lat);
  const absolute = bearingDeg(from.lon, from.lat, to.lon, to.lat);
  const heading = from.headingDeg;
  const relative = heading === null || heading === undefined || !Number.isFinite(heading)
    ? null : normalise(absolute - heading);
  return { distanceM: dist, bearingDeg: absolute, relative };
}

// The phone's compass heading (degrees clockwise from north) from a DeviceOrientationEvent,
// or null when the event does not give one. Safari reports webkitCompassHeading; Chromium
// reports an absolute alpha (counter-clockwise from north) on deviceorientationabsolute. Both
// are for the device held upright in portrait: the screen's own rotation is added.
export function compassHeading(ev, screenAngleDeg = 0) {
  if (typeof ev.webkitCompassHeading === "number" && Number.isFinite(ev.webkitCompassHeading)) {
    return normalise(ev.webkitCompassHeading + screenAngleDeg);
  }
  if (ev.absolute && typeof ev.alpha === "number" && Number.isFinite(ev.alpha)) {
    return normalise(360 - ev.alpha + screenAngleDeg);
  }
  return null;
}

// Most urgent first: not yet answered, then severity, then the one waiting longest.
export function byUrgency(a, b) {
  const ua = UNANSWERED.has(a.state) ? 0 : 1;
  const ub = UNANSWERED.has(b.state) ? 0 : 1;
  if (ua !== ub) return ua - ub;
  const sa = SEVERITY_RANK[a.severity] ?? 5;
  const sb = SEVERITY_RANK[b.severity] ?? 5;
  if (sa !== sb) return sa - sb;
  return Date.parse(a.issued_at || a.notified_at) - Date.parse(b.issued_at || b.notified_at);
}

// "85 m", "1.2 km": the figure and the catalogue key for it.
export function distanceParts(m) {
  if (m < 1000) return { key: "dispatchui.distance_m", n: Math.round(m) };
  return { key: "dispatchui.distance_km", n: (m / 1000).toFixed(1) };
}
