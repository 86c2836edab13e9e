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

export async function setLanguage(code) {
  if (!LANGUAGES.includes(code)) code = "en";
  await Promise.all([load("en"), load(code)]);
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

export function formatTime(iso) {
  if (!iso) return t("time.never");
  const d = new Date(iso);
  return new Intl.DateTimeFormat(lang, {
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  }).format(d);
}

export function formatDateTime(iso) {
  if (!iso) return t("time.never");
  return new Intl.DateTimeFormat(lang, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  }).format(new Date(iso));
}

export function formatAgo(iso, now = Date.now()) {
  if (!iso) return t("time.never");
  const s = Math.round((new Date(iso).getTime() - now) / 1000);
  const rtf = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
  const a = Math.abs(s);
  if (a < 60) return rtf.format(s, "second");
  if (a < 3600) return rtf.format(Math.round(s / 60), "minute");
  if (a < 86400) return rtf.format(Math.round(s / 3600), "hour");
  return rtf.format(Math.round(s / 86400), "day");
}
