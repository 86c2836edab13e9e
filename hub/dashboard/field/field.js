// The grid worker's field page (/ui/field/): report a problem, follow one's reports, work
// one's tasks. Installable (manifest.json), loads offline (sw.js), and files reports offline:
// a report goes into the IndexedDB queue (queue.js) first and is sent when the phone is
// online, exactly once (its client_report_id).
import { api, ApiError } from "/ui/js/api.js";
import { h, fill } from "/ui/js/dom.js";
import { t, setLanguage, preferredLanguage, onLanguage, language, formatDateTime } from "/ui/js/i18n.js";
import * as queue from "./queue.js";
import { PlacePicker } from "./place.js";
import { VoiceRecorder, voiceFilename } from "./voice.js";
import { TasksView } from "./tasks.js";
import { OfficerView } from "./officer.js";

const $ = (sel) => document.querySelector(sel);
// Not secrets: who is signed in (to show the page offline) and the form's vocabulary. The
// session itself is the hub's HttpOnly cookie, which scripts never read.
const ME_KEY = "gw.field.me";
const FORM_KEY = "gw.field.form";
const MAP_KEY = "gw.field.map";
const RETRY_S = [5, 15, 30, 60, 120];
// Answers that the same bytes sent again cannot change: the report is refused, not retried.
const REFUSED = new Set([400, 403, 409, 413, 415, 422]);

function readJson(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || "null");
  } catch {
    return null;
  }
}

function writeJson(key, value) {
  localStorage.setItem(key, JSON.stringify(value));
}

function isNetworkError(err) {
  return !(err instanceof ApiError); // fetch rejects (TypeError) when there is no network
}

class FieldApp {
  constructor(me) {
    this.me = me;
    this.form = readJson(FORM_KEY);
    this.photos = []; // Files, in the order they were taken
    this.voice = null; // Blob
    this.chosenCategory = false; // the worker picked one: suggestions no longer replace it
    this.flushing = null;
    this.again = false;
    this.retry = 0;
    this.retryTimer = null;
    this.tasks = new TasksView($("#task-list"), $("#tasks-note"));
    // An officer (dispatch:answer) also gets "My dispatches", and lands on it.
    this.officer = me.permissions.includes("dispatch:answer") ? new OfficerView(me, {
      list: $("#dispatch-list"), note: $("#dispatches-note"), duty: $("#duty"), compass: $("#compass"),
    }) : null;
  }

  async start() {
    $("#who-name").textContent = this.me.display_name || this.me.username;
    $("#app-view").hidden = false;
    for (const tab of document.querySelectorAll(".tab")) {
      tab.addEventListener("click", () => this.show(tab.dataset.view));
    }
    // The form works from the moment it shows: a tap on Send, a photo picked or a description
    // typed while the vocabulary and the map load is handled, never lost or left to the
    // browser's own form submit; what was typed is suggested for once the categories are in.
    this.bindReport();
    await this.loadForm();
    this.place = new PlacePicker($("#place-map"), readJson(MAP_KEY) || {}, (p) => this.showPlace(p));
    this.loadOutline();
    if ($("#description").value.trim()) this.suggest($("#description").value);
    window.addEventListener("online", () => this.online());
    window.addEventListener("offline", () => this.showNet());
    onLanguage(() => this.relabel());
    this.showNet();
    await this.renderReports();
    this.flush();
    if (navigator.onLine) this.refreshStatuses();
    if (this.officer) {
      document.querySelector('.tab[data-view="dispatches"]').hidden = false;
      this.officer.start();
      this.show("dispatches");
    }
  }

  show(view) {
    for (const tab of document.querySelectorAll(".tab")) {
      tab.setAttribute("aria-pressed", String(tab.dataset.view === view));
    }
    for (const name of ["report", "reports", "tasks", "dispatches"]) $(`#${name}-view`).hidden = name !== view;
    if (view === "report") this.place?.invalidate();
    if (view === "reports") this.renderReports().then(() => this.refreshStatuses());
    if (view === "tasks") this.tasks.refresh();
    if (view === "dispatches") this.officer?.refresh();
  }

  online() {
    this.showNet();
    this.retry = 0;
    this.flush();
    this.refreshStatuses();
    this.loadForm().catch((err) => console.warn("the form's vocabulary was not refreshed", err));
  }

  showNet() {
    const el = $("#net");
    el.dataset.online = String(navigator.onLine);
    el.textContent = navigator.onLine ? t("field.net.online") : t("field.net.offline");
  }

  relabel() {
    this.showNet();
    this.fillCategories();
    this.showPlace(this.place?.point ?? null);
    this.place?.relabel();
    this.renderPhotos();
    this.renderReports();
    if (!$("#tasks-view").hidden) this.tasks.render();
    this.officer?.relabel();
  }

  // --- the form's vocabulary ----------------------------------------------------------------

  async loadForm() {
    if (navigator.onLine) {
      try {
        this.form = await api("/api/v1/field-reports/form");
        writeJson(FORM_KEY, this.form);
        writeJson(MAP_KEY, await api("/api/v1/ui/config"));
      } catch (err) {
        if (!isNetworkError(err)) throw err;
      }
    }
    this.fillCategories();
  }

  async loadOutline() {
    if (!navigator.onLine || !readJson(MAP_KEY)?.has_outline) return;
    try {
      this.place.showOutline(await api("/api/v1/ui/outline"));
    } catch {
      // the outline is a help for finding one's way, not needed to report
    }
  }

  fillCategories() {
    const select = $("#category");
    const current = select.value;
    const options = [h("option", { value: "" }, t("field.report.category_auto"))];
    for (const c of this.form?.categories || []) {
      options.push(h("option", { value: c.id }, c.names[language()] || c.names.en || c.id));
    }
    fill(select, options);
    select.value = current;
  }

  // --- the report form -----------------------------------------------------------------------

  bindReport() {
    const description = $("#description");
    let timer = null;
    description.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.suggest(description.value), 400);
    });
    $("#category").addEventListener("change", () => {
      this.chosenCategory = $("#category").value !== "";
      if (this.chosenCategory) $("#suggestion").textContent = "";
    });
    $("#locate").addEventListener("click", () => this.locate());
    $("#photo-input").addEventListener("change", (ev) => this.addPhotos(ev.target));
    $("#record").addEventListener("click", () => this.toggleRecording());
    $("#report-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.file();
    });
  }

  async suggest(text) {
    if (this.chosenCategory || !text.trim() || !navigator.onLine) return;
    try {
      const s = await api("/api/v1/classify/report", { method: "POST", body: { text } });
      if (this.chosenCategory || $("#description").value !== text) return;
      const known = (this.form?.categories || []).find((c) => c.id === s.category);
      if (!known) {
        $("#suggestion").textContent = "";
        return;
      }
      $("#category").value = known.id;
      $("#suggestion").textContent = t("field.report.suggested", {
        category: known.names[language()] || known.names.en,
      });
    } catch {
      // no suggestion: the hub's classifier still decides when the report arrives
    }
  }

  async locate() {
    $("#place-text").textContent = t("field.report.locating");
    try {
      if (!this.place) throw new Error("the map is still loading");
      await this.place.locate();
    } catch {
      $("#place-text").textContent = t("field.report.locate_failed");
    }
  }

  showPlace(point) {
    const el = $("#place-text");
    if (!point) {
      el.textContent = t("field.report.no_location");
      return;
    }
    const coords = `${point.lat.toFixed(6)}, ${point.lon.toFixed(6)}`;
    el.textContent = point.source === "gps" && point.accuracy_m != null
      ? t("field.report.located", { coords, accuracy: Math.round(point.accuracy_m) })
      : t("field.report.placed", { coords });
  }

  addPhotos(input) {
    const max = this.form?.max_photos ?? 5;
    const maxBytes = this.form?.max_photo_bytes ?? 8 * 1024 * 1024;
    $("#report-error").textContent = "";
    for (const file of input.files) {
      if (this.photos.length >= max) {
        $("#report-error").textContent = t("field.report.too_many_photos", { max });
        break;
      }
      if (file.size > maxBytes) {
        $("#report-error").textContent = t("field.report.photo_too_large", {
          name: file.name, mb: Math.floor(maxBytes / 1048576),
        });
        continue;
      }
      this.photos.push(file);
    }
    input.value = "";
    this.renderPhotos();
  }

  renderPhotos() {
    fill($("#photo-list"), this.photos.map((file, i) => {
      const img = h("img", { src: URL.createObjectURL(file), alt: t("field.report.photo_n", { n: i + 1 }) });
      img.addEventListener("load", () => URL.revokeObjectURL(img.src), { once: true });
      const remove = h("button", { type: "button" }, t("field.report.remove"));
      remove.setAttribute("aria-label", t("field.report.remove_photo", { n: i + 1 }));
      remove.addEventListener("click", () => {
        this.photos.splice(i, 1);
        this.renderPhotos();
      });
      return h("li", null, img, remove);
    }));
  }

  async toggleRecording() {
    const button = $("#record");
    if (this.recorder?.recording) {
      const blob = await this.recorder.stop();
      this.recorder = null;
      button.setAttribute("aria-pressed", "false");
      button.textContent = t("field.voice.record");
      this.setVoice(blob);
      return;
    }
    $("#report-error").textContent = "";
    this.recorder = new VoiceRecorder({
      maxBytes: this.form?.max_voice_bytes ?? 4 * 1024 * 1024,
      onTick: (s) => {
        $("#record-time").textContent = t("field.voice.seconds", { s: Math.floor(s) });
      },
    });
    try {
      await this.recorder.start();
    } catch {
      this.recorder = null;
      $("#report-error").textContent = t("field.voice.no_microphone");
      return;
    }
    button.setAttribute("aria-pressed", "true");
    button.textContent = t("field.voice.stop");
    this.recorder.done.then((blob) => {
      // Stopped by the size limit rather than by the worker.
      if (this.recorder && !this.recorder.recording) {
        this.recorder = null;
        button.setAttribute("aria-pressed", "false");
        button.textContent = t("field.voice.record");
        this.setVoice(blob);
      }
    });
  }

  setVoice(blob) {
    this.voice = blob && blob.size ? blob : null;
    const box = $("#voice-preview");
    if (!this.voice) {
      fill(box);
      $("#record-time").textContent = "";
      return;
    }
    const audio = h("audio", { controls: true, src: URL.createObjectURL(this.voice) });
    audio.setAttribute("aria-label", t("field.voice.preview"));
    const remove = h("button", { type: "button" }, t("field.voice.remove"));
    remove.addEventListener("click", () => this.setVoice(null));
    fill(box, audio, remove);
  }

  async file() {
    const error = $("#report-error");
    error.textContent = "";
    $("#report-done").textContent = "";
    const description = $("#description").value.trim();
    if (!description) {
      error.textContent = t("field.report.need_description");
      $("#description").focus();
      return;
    }
    if (this.recorder?.recording) {
      error.textContent = t("field.voice.still_recording");
      return;
    }
    const report = { client_report_id: queue.newReportId(), description };
    const category = $("#category").value;
    if (category) report.category = category;
    const point = this.place?.point;
    if (point) {
      report.lon = Number(point.lon.toFixed(7));
      report.lat = Number(point.lat.toFixed(7));
    }
    const address = $("#address").value.trim();
    if (address) report.address = address;
    const record = {
      client_report_id: report.client_report_id,
      reporter: this.me.username,
      report,
      photos: this.photos.map((f) => ({ blob: f, name: f.name || "photo.jpg" })),
      voice: this.voice ? { blob: this.voice, name: voiceFilename(this.voice.type) } : null,
      created_at: new Date().toISOString(),
      state: queue.State.QUEUED,
      attempts: 0,
    };
    await queue.put(record); // stored before anything is sent: a crash now loses nothing
    this.resetForm();
    $("#report-done").textContent = navigator.onLine ? t("field.report.sending") : t("field.report.queued");
    await this.renderReports();
    this.flush();
  }

  resetForm() {
    $("#report-form").reset();
    this.photos = [];
    this.renderPhotos();
    this.setVoice(null);
    this.place?.clear();
    this.chosenCategory = false;
    $("#suggestion").textContent = "";
    $("#place-text").textContent = "";
  }

  // --- sending the queue ---------------------------------------------------------------------

  // One sender at a time across the page's tabs (Web Locks); the hub's idempotency by
  // client_report_id is what makes a double send harmless where locks are missing.
  // A report filed while a pass is running was not in the list that pass read: one more pass
  // follows, or it would wait for the next network change.
  flush() {
    if (this.flushing) {
      this.again = true;
      return this.flushing;
    }
    this.again = false;
    const run = () => this.sendQueued();
    this.flushing = (navigator.locks ? navigator.locks.request("gw-field-send", run) : run())
      .catch((err) => console.warn("sending the queue failed", err))
      .finally(() => {
        this.flushing = null;
        if (this.again) this.flush();
      });
    return this.flushing;
  }

  async sendQueued() {
    clearTimeout(this.retryTimer);
    const waiting = (await queue.mine(this.me.username)).filter((r) => r.state === queue.State.QUEUED);
    let failed = false;
    for (const record of waiting.reverse()) { // oldest first
      if (!navigator.onLine) {
        failed = true;
        break;
      }
      const outcome = await this.send(record);
      if (outcome === "retry") {
        failed = true;
        break;
      }
      if (outcome === "signed_out") return;
    }
    await this.renderReports();
    if (failed) {
      const delay = RETRY_S[Math.min(this.retry, RETRY_S.length - 1)];
      this.retry += 1;
      this.retryTimer = setTimeout(() => this.flush(), delay * 1000);
    } else {
      this.retry = 0;
    }
  }

  async send(record) {
    const fresh = await queue.get(record.client_report_id);
    if (!fresh || fresh.state !== queue.State.QUEUED) return "done"; // another tab sent it
    const body = new FormData();
    body.append("report", JSON.stringify(fresh.report));
    for (const photo of fresh.photos) body.append("photo", photo.blob, photo.name);
    if (fresh.voice) body.append("voice", fresh.voice.blob, fresh.voice.name);
    let info;
    try {
      info = await api("/api/v1/field-reports", { method: "POST", body });
    } catch (err) {
      return this.failed(fresh, err);
    }
    // 201 filed, or 200: the hub already had this client_report_id (a resend).
    await queue.update(fresh.client_report_id, (r) => ({
      ...r,
      state: queue.State.SENT,
      number: info.number,
      report_id: info.id,
      status: info.status,
      incident_number: info.incident_number,
      category: info.category,
      sent_at: new Date().toISOString(),
      // The hub has the media now; the phone's copy would only fill its storage.
      photos: [],
      photo_count: fresh.photos.length,
      voice: null,
      has_voice: Boolean(fresh.voice),
    }));
    return "done";
  }

  async failed(record, err) {
    if (isNetworkError(err)) return "retry"; // no network: the record stays as it is
    if (err.status === 401) {
      showLogin(t("field.login.again"));
      return "signed_out";
    }
    if (REFUSED.has(err.status)) {
      await queue.update(record.client_report_id, (r) => ({
        ...r, state: queue.State.REFUSED, error: err.message, http_status: err.status,
      }));
      return "done";
    }
    await queue.update(record.client_report_id, (r) => ({ ...r, attempts: (r.attempts || 0) + 1 }));
    return "retry"; // 429, 5xx: the hub is busy or down; the record waits
  }

  async refreshStatuses() {
    const sent = (await queue.mine(this.me.username)).filter((r) => r.state === queue.State.SENT);
    if (!sent.length) return;
    try {
      const page = await api("/api/v1/field-reports/mine?limit=200");
      const byId = new Map(page.items.map((r) => [r.client_report_id, r]));
      for (const record of sent) {
        const info = byId.get(record.client_report_id);
        if (info && info.status !== record.status) {
          await queue.update(record.client_report_id, (r) => ({ ...r, status: info.status }));
        }
      }
      await this.renderReports();
    } catch {
      // offline again or signed out: the statuses shown are the last ones known
    }
  }

  async renderReports() {
    const records = await queue.mine(this.me.username);
    const waiting = records.filter((r) => r.state === queue.State.QUEUED).length;
    $("#queue-count").textContent = waiting ? String(waiting) : "";
    $("#queue-count").setAttribute("aria-label", waiting ? t("field.reports.waiting", { n: waiting }) : "");
    $("#reports-empty").hidden = records.length > 0;
    fill($("#report-list"), records.map((r) => this.reportItem(r)));
    const last = records[0];
    if (last && last.state === queue.State.SENT && $("#report-done").textContent) {
      $("#report-done").textContent = t("field.report.confirmed", { number: last.number });
    }
  }

  reportItem(r) {
    const state = h("span", { class: "state", "data-state": r.state }, t(`field.state.${r.state}`));
    const head = h("div", { class: "head" },
      r.number ? h("span", { class: "number" }, r.number) : null,
      state,
      r.status ? h("span", { class: "status" }, t(`field_report.status.${r.status}`)) : null,
    );
    const photos = r.photo_count ?? r.photos.length;
    const voice = r.has_voice ?? Boolean(r.voice);
    return h("li", { class: "item report", "data-client-id": r.client_report_id },
      head,
      h("p", { class: "desc" }, r.report.description),
      h("p", { class: "hint" },
        formatDateTime(r.created_at),
        photos ? ` · ${t("field.reports.photos", { n: photos })}` : "",
        voice ? ` · ${t("field.reports.voice")}` : "",
      ),
      r.state === queue.State.REFUSED ? h("p", { class: "error" }, t("field.reports.refused", { error: r.error || "" })) : null,
    );
  }
}

// --- signing in --------------------------------------------------------------------------------

function showLogin(message) {
  $("#app-view").hidden = true;
  $("#login-view").hidden = false;
  $("#login-error").textContent = message || "";
  $("#login-user").focus();
}

let app = null;

async function enter(me) {
  $("#login-view").hidden = true;
  if (app) {
    app.me = me;
    $("#app-view").hidden = false;
    app.flush();
    return;
  }
  app = new FieldApp(me);
  await app.start();
}

async function boot() {
  await setLanguage(preferredLanguage(navigator.language?.startsWith("zh") ? "zh-CN" : "en"));
  for (const sel of document.querySelectorAll(".lang-select")) {
    sel.addEventListener("change", () => setLanguage(sel.value));
  }
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/ui/field/sw.js", { scope: "/ui/field/" }).catch((err) => {
      console.warn("the field page will not load offline", err);
    });
  }
  $("#login-form").addEventListener("submit", login);
  $("#logout").addEventListener("click", logout);
  let me = null;
  try {
    me = await api("/api/v1/auth/me");
    writeJson(ME_KEY, { username: me.username, display_name: me.display_name, role: me.role, permissions: me.permissions });
  } catch (err) {
    if (isNetworkError(err)) {
      // Offline: the session cookie is still there for when the network is back; who it
      // belongs to was remembered at the last sign-in.
      me = readJson(ME_KEY);
      if (!me) {
        showLogin(t("field.login.offline_first"));
        return;
      }
    } else {
      localStorage.removeItem(ME_KEY);
      showLogin("");
      return;
    }
  }
  if (!me.permissions.includes("reports:submit")) {
    showLogin(t("field.login.not_allowed"));
    return;
  }
  await enter(me);
}

async function login(ev) {
  ev.preventDefault();
  $("#login-error").textContent = "";
  try {
    await api("/api/v1/auth/login", {
      method: "POST",
      body: { username: $("#login-user").value, password: $("#login-pass").value },
    });
    const me = await api("/api/v1/auth/me");
    if (!me.permissions.includes("reports:submit")) {
      await api("/api/v1/auth/logout", { method: "POST" });
      $("#login-error").textContent = t("field.login.not_allowed");
      return;
    }
    writeJson(ME_KEY, { username: me.username, display_name: me.display_name, role: me.role, permissions: me.permissions });
    $("#login-pass").value = "";
    await enter(me);
  } catch (err) {
    const key = isNetworkError(err) ? "field.login.offline_first"
      : err.status === 429 ? "login.too_many" : err.status === 401 ? "login.wrong" : "login.hub_unreachable";
    $("#login-error").textContent = t(key);
  }
}

async function logout() {
  try {
    await api("/api/v1/auth/logout", { method: "POST" });
  } catch {
    // offline: the cookie ends at its expiry; this phone forgets who was signed in now
  }
  localStorage.removeItem(ME_KEY);
  location.reload();
}

boot();
