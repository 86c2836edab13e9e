// The field page's service worker (scope /ui/field/): it keeps the app shell so the page loads
// with no network, and nothing else. Reports wait in the page's IndexedDB queue (queue.js), not
// here: the page sends them, so a report is only ever sent with the signed-in user's session.
// API answers are never cached (they are people's data and change; the page keeps what it needs).
const VERSION = "gw-field-v4";
const SHELL = [
  "/ui/field/",
  "/ui/field/field.js",
  "/ui/field/queue.js",
  "/ui/field/place.js",
  "/ui/field/voice.js",
  "/ui/field/tasks.js",
  "/ui/field/officer.js",
  "/ui/field/field.css",
  "/ui/field/manifest.json",
  "/ui/field/icons/icon.svg",
  "/ui/field/icons/icon-192.png",
  "/ui/js/api.js",
  "/ui/js/datum.js",
  "/ui/js/dom.js",
  "/ui/js/i18n.js",
  "/ui/js/live.js",
  "/ui/js/bearing.js",
  "/ui/i18n/en.json",
  "/ui/i18n/zh-CN.json",
  "/ui/node_modules/leaflet/dist/leaflet-src.esm.js",
  "/ui/node_modules/leaflet/dist/leaflet.css",
  "/ui/node_modules/leaflet/dist/images/marker-icon.png",
  "/ui/node_modules/leaflet/dist/images/marker-icon-2x.png",
  "/ui/node_modules/leaflet/dist/images/marker-shadow.png",
];
const SHELL_PATHS = new Set(SHELL);

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(VERSION)
      .then((cache) => cache.addAll(SHELL.map((path) => new Request(path, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(
        keys.filter((k) => k.startsWith("gw-field-") && k !== VERSION).map((k) => caches.delete(k)),
      ))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (!SHELL_PATHS.has(url.pathname)) return; // the API, tiles, anything else: the network's
  event.respondWith(networkFirst(event.request, url.pathname));
});

// The network first, so a hub update reaches the phone the next time it is online; the cached
// copy when the network fails (offline, or the hub unreachable).
async function networkFirst(request, path) {
  const cache = await caches.open(VERSION);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(path, response.clone());
    return response;
  } catch (err) {
    const cached = await cache.match(path);
    if (cached) return cached;
    throw err;
  }
}
