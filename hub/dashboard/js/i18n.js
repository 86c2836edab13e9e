// Message catalogues: every user-facing string goes through t(); the DOM carries data-i18n*.
const catalogues = {};
let lang = "en";
const listeners = new Set();

export const LANGUAGES = ["en", "zh-CN"];

async function load(code) {
  if (!catalogues[code]) {
    const res = await fetch(`/ui/i18n/${code}.json`, { cache: "no-cache" });
    if (!res.ok) throw new Error(`catalogue ${code}: HTTP ${res.status}`);
    catalogues[code] = await res.json();
  }
  return catalogues[code];
}

let switching = 0;

export async function setLanguage(code) {
  if (!LANGUAGES.includes(code)) code = "en";
  // Only the latest switch applies: one still fetching its catalogue must not land after a
  // later one (zh-CN then en quickly would otherwise end in zh-CN with the select on en).
  const mine = ++switching;
  await Promise.all([load("en"), load(code)]);
  if (mine !== switching) return;
  lang = code;
  localStorage.setItem("gw.lang", code);
  document.documentElement.lang = code;
  for (const sel of document.querySelectorAll(".lang-select")) sel.value = code;
  translateDom(document);
  for (const fn of listeners) fn(code);
}

export function language() {
  return lang;
}

export function preferredLanguage(fallback) {
  return localStorage.getItem("gw.lang") || fallback || "en";
}

export function onLanguage(fn) {
  listeners.add(fn);
}

// t("feed.count", {n: 3}) -> "3 open"; a missing key falls back to English, then to the key.
export function t(key, vars) {
  const text = catalogues[lang]?.[key] ?? catalogues.en?.[key] ?? key;
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

export function translateDom(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll("[data-i18n-aria-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  }
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
}

// --- time ------------------------------------------------------------------------------------
// Every time on the page is shown in the site's zone (HubConfig.timezone, from /api/v1/ui/config)
// with a 24-hour clock, whatever the browser's own zone and language: a command room in one
// district reads one clock. hourCycle "h23", not hour12: false, which some locales render as
// "24:05" past midnight.
let zone = "UTC";
const formatters = new Map();

export function setTimeZone(name) {
  try {
    new Intl.DateTimeFormat("en", { timeZone: name });
    zone = name;
  } catch {
    console.error(`unknown site time zone ${name}; showing UTC`);
    zone = "UTC";
  }
  formatters.clear();
}

export function timeZone() {
  return zone;
}

function formatter(kind, options) {
  const key = `${lang}|${zone}|${kind}`;
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(lang, { ...options, timeZone: zone, hourCycle: "h23" });
    formatters.set(key, f);
  }
  return f;
}

const ZONELESS = /T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;

// An API time as a Date. The hub sends every time with its zone; one without (an older hub, a
// hand-made link) is UTC, never the browser's local time: that misreading froze markers west of
// UTC, where a naive initial position looked hours newer than every live one (issue 13).
export function parseTime(iso) {
  if (iso instanceof Date) return iso;
  return new Date(typeof iso === "string" && ZONELESS.test(iso) ? `${iso}Z` : iso);
}

export function formatTime(iso) {
  if (!iso) return t("time.never");
  return formatter("time", { hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(parseTime(iso));
}

export function formatDateTime(iso) {
  if (!iso) return t("time.never");
  return formatter("datetime", {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).format(parseTime(iso));
}

// "Asia/Shanghai (UTC+08:00)": the header says which clock the page shows. The offset is
// worked out here, not by Intl's "shortOffset" (which reads "GMT+8" in every language).
export function zoneLabel(when = new Date()) {
  const minutes = Math.round(zoneOffsetMs(when.getTime()) / 60000);
  const pad = (n) => String(n).padStart(2, "0");
  const offset = `${minutes < 0 ? "-" : "+"}${pad(Math.floor(Math.abs(minutes) / 60))}:${pad(Math.abs(minutes) % 60)}`;
  return t("time.zone_label", { zone, offset });
}

function zoneParts(ms) {
  const parts = {};
  for (const p of formatter("parts", {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(new Date(ms))) parts[p.type] = p.value;
  return parts;
}

function zoneOffsetMs(ms) {
  const p = zoneParts(ms);
  return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(ms / 1000) * 1000;
}

// A datetime-local input's value ("2026-12-01T08:30") for a Date, on the site's clock.
export function toZoneInput(date) {
  const p = zoneParts(date.getTime());
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

// The instant a datetime-local value names on the site's clock (not the browser's).
export function fromZoneInput(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value || "");
  if (!m) return new Date(NaN);
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  let ms = wall - zoneOffsetMs(wall);
  ms = wall - zoneOffsetMs(ms); // again at the instant itself: right across a DST change
  return new Date(ms);
}

// A figure a device may not report (battery, temperature, fps): "not reported", never 0.
export function figure(value, show = String) {
  if (value === null || value === undefined || (typeof value === "number" && !Number.isFinite(value))) {
    return t("live.not_reported");
  }
  return show(value);
}

export function formatAgo(iso, now = Date.now()) {
  if (!iso) return t("time.never");
  const s = Math.round((parseTime(iso).getTime() - now) / 1000);
  const rtf = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
  const a = Math.abs(s);
  if (a < 60) return rtf.format(s, "second");
  if (a < 3600) return rtf.format(Math.round(s / 60), "minute");
  if (a < 86400) return rtf.format(Math.round(s / 3600), "hour");
  return rtf.format(Math.round(s / 86400), "day");
}
