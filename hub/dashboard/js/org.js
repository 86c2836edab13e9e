// The Organisation panel (commanders, admins): departments per line of work, teams of grid
// workers with their leader, which team and departments answer for a grid cell, and the
// GeoJSON import of cells with every problem the hub found. It lives in the detail panel.
import { api, fetchAll } from "./api.js";
import { language, t } from "./i18n.js";
import { fill, h } from "./dom.js";

const $ = (sel) => document.querySelector(sel);

function usernames(text) {
  return text.split(/[\s,，、]+/).map((s) => s.trim()).filter(Boolean);
}

function field(id, label, input) {
  return [h("label", { for: id }, label), input];
}

export class OrgPanel {
  constructor(dash) {
    this.dash = dash;
    this.lines = [];
    this.departments = [];
    this.teams = [];
    this.editing = { department: null, team: null };
    this.cellId = null;
    this.status = {}; // element id -> {text, cls, problems}
  }

  site() {
    return this.dash.config.site || "default";
  }

  async loadLines() {
    this.lines = await api("/api/v1/lines");
  }

  // A line's name in the page's language (the vocabulary names each line in both).
  lineName(id) {
    const line = this.lines.find((l) => l.id === id);
    if (!line) return id;
    return line.names[language()] || line.names.en;
  }

  async load() {
    const site = this.dash.config.site ? { site: this.dash.config.site } : {};
    const [lines, departments, teams] = await Promise.all([
      api("/api/v1/lines"),
      fetchAll("/api/v1/departments", site),
      fetchAll("/api/v1/teams", site),
    ]);
    this.lines = lines;
    this.departments = departments;
    this.teams = teams;
  }

  // Opened on a cell (from its panel or from an incident in it): that cell's team and
  // departments come into view with the focus on them, the rest of the panel above.
  async open(cellId) {
    if (cellId) this.cellId = cellId;
    await this.load();
    this.render();
    if (cellId) {
      const team = document.getElementById("org-cell-team");
      team?.scrollIntoView({ block: "center" });
      team?.focus();
    }
  }

  render() {
    const box = this.dash.panels.openDetail("org", "org", [
      this.departmentSection(),
      this.teamSection(),
      this.cellSection(),
      this.importSection(),
    ]);
    this.bind(box);
    for (const [id, s] of Object.entries(this.status)) this.showStatus(id, s);
  }

  setStatus(id, text, cls, problems = []) {
    this.status[id] = { text, cls, problems };
    this.showStatus(id, this.status[id]);
  }

  showStatus(id, s) {
    const el = document.getElementById(id);
    if (!el) return;
    el.className = `org-status ${s.cls}`;
    fill(el, s.text, s.problems.length ? h("ul", { class: "org-problems" }, s.problems.map((p) => h("li", null, p))) : null);
  }

  // --- departments ------------------------------------------------------------------------
  departmentSection() {
    const e = this.departments.find((d) => d.id === this.editing.department);
    const lineOptions = this.lines.map((l) => h("option", { value: l.id, selected: e?.line === l.id }, this.lineName(l.id)));
    return h("section", { class: "org-section", "aria-labelledby": "org-dep-title" },
      h("h3", { id: "org-dep-title" }, t("org.departments")),
      this.list("org-dep-list", this.departments, (d) => [
        h("span", { class: "org-name" }, d.name), " · ", h("span", { class: "muted" }, this.lineName(d.line)),
      ], "department"),
      h("form", { id: "org-dep-form", class: "org-form" },
        field("org-dep-name", t("org.name"), h("input", { id: "org-dep-name", required: true, maxlength: 200, value: e?.name ?? "" })),
        field("org-dep-line", t("org.line"), h("select", { id: "org-dep-line", required: true }, lineOptions)),
        field("org-dep-supervisor", t("org.supervisor"), h("input", { id: "org-dep-supervisor", maxlength: 64, value: e?.supervisor ?? "", autocomplete: "off" })),
        field("org-dep-commander", t("org.commander"), h("input", { id: "org-dep-commander", maxlength: 64, value: e?.commander ?? "", autocomplete: "off" })),
        h("div", { class: "org-buttons" },
          h("button", { type: "submit", class: "primary" }, t(e ? "org.save" : "org.create")),
          e ? h("button", { type: "button", class: "org-cancel", "data-kind": "department" }, t("org.cancel")) : null),
        h("p", { id: "org-dep-status", class: "org-status", role: "status" })));
  }

  // --- teams ------------------------------------------------------------------------------
  teamSection() {
    const e = this.teams.find((x) => x.id === this.editing.team);
    return h("section", { class: "org-section", "aria-labelledby": "org-team-title" },
      h("h3", { id: "org-team-title" }, t("org.teams")),
      this.list("org-team-list", this.teams, (x) => [
        h("span", { class: "org-name" }, x.name), " · ",
        h("span", { class: "muted" }, t("org.member_count", { n: x.members.length })),
        x.leader ? [" · ", h("span", { class: "muted" }, t("org.led_by", { who: x.leader }))] : null,
      ], "team"),
      h("form", { id: "org-team-form", class: "org-form" },
        field("org-team-name", t("org.name"), h("input", { id: "org-team-name", required: true, maxlength: 200, value: e?.name ?? "" })),
        field("org-team-members", t("org.members"), h("input", { id: "org-team-members", value: e ? e.members.join(", ") : "", autocomplete: "off" })),
        field("org-team-leader", t("org.leader"), h("input", { id: "org-team-leader", maxlength: 64, value: e?.leader ?? "", autocomplete: "off" })),
        h("div", { class: "org-buttons" },
          h("button", { type: "submit", class: "primary" }, t(e ? "org.save" : "org.create")),
          e ? h("button", { type: "button", class: "org-cancel", "data-kind": "team" }, t("org.cancel")) : null),
        h("p", { id: "org-team-status", class: "org-status", role: "status" })));
  }

  list(id, items, describe, kind) {
    if (!items.length) return h("p", { id, class: "muted" }, t("org.none_yet"));
    return h("ul", { id, class: "org-list" }, items.map((item) => h("li", null,
      h("span", { class: "org-item" }, describe(item)), " ",
      h("button", { type: "button", class: "org-edit", "data-kind": kind, "data-id": item.id,
        "aria-label": t("org.edit_named", { name: item.name }) }, t("org.edit")))));
  }

  // --- cell responsibility ----------------------------------------------------------------
  cellSection() {
    const cells = [...this.dash.cells.cells.values()].map((c) => c.feature)
      .sort((a, b) => String(a.properties.name).localeCompare(String(b.properties.name)));
    if (!this.cellId && cells.length) this.cellId = cells[0].id;
    const current = cells.find((c) => c.id === this.cellId)?.properties;
    const teamOptions = [h("option", { value: "" }, t("org.no_team")),
      ...this.teams.map((x) => h("option", { value: x.id, selected: current?.responsible_team?.id === x.id }, x.name))];
    const perLine = this.lines.map((l) => {
      const chosen = current?.departments?.[l.id]?.id;
      // The label names the line: data of the vocabulary, in the page's language.
      return field(`org-cell-dep-${l.id}`, this.lineName(l.id), h("select", { id: `org-cell-dep-${l.id}`, "data-line": l.id, class: "org-cell-dep" },
        h("option", { value: "" }, t("org.no_department")),
        this.departments.filter((d) => d.line === l.id)
          .map((d) => h("option", { value: d.id, selected: chosen === d.id }, d.name))));
    });
    return h("section", { class: "org-section", "aria-labelledby": "org-cell-title" },
      h("h3", { id: "org-cell-title" }, t("org.cell_responsibility")),
      cells.length ? h("form", { id: "org-cell-form", class: "org-form" },
        field("org-cell", t("org.cell"), h("select", { id: "org-cell" },
          cells.map((c) => h("option", { value: c.id, selected: c.id === this.cellId }, c.properties.name || c.id)))),
        field("org-cell-team", t("org.team"), h("select", { id: "org-cell-team" }, teamOptions)),
        perLine,
        h("div", { class: "org-buttons" }, h("button", { type: "submit", class: "primary" }, t("org.apply"))),
        h("p", { id: "org-cell-status", class: "org-status", role: "status" }))
        : h("p", { class: "muted" }, t("org.no_cells")));
  }

  // --- import -----------------------------------------------------------------------------
  importSection() {
    return h("section", { class: "org-section", "aria-labelledby": "org-import-title" },
      h("h3", { id: "org-import-title" }, t("org.import_title")),
      h("form", { id: "org-import-form", class: "org-import" },
        h("label", { class: "org-check" }, h("input", { id: "org-import-replace", type: "checkbox" }), " ",
          h("span", null, t("org.import_replace"))),
        h("input", { id: "org-cell-file", class: "sr-only file-input", type: "file", accept: ".geojson,.json,application/geo+json" }),
        h("label", { for: "org-cell-file", class: "file-button" }, t("org.import")),
        h("div", { id: "org-import-status", class: "org-status", role: "status", "aria-live": "polite" })));
  }

  bind(box) {
    for (const btn of box.querySelectorAll(".org-edit")) {
      btn.addEventListener("click", () => {
        this.editing[btn.dataset.kind] = btn.dataset.id;
        this.render();
        box.querySelector(btn.dataset.kind === "team" ? "#org-team-name" : "#org-dep-name")?.focus();
      });
    }
    for (const btn of box.querySelectorAll(".org-cancel")) {
      btn.addEventListener("click", () => {
        this.editing[btn.dataset.kind] = null;
        this.render();
      });
    }
    box.querySelector("#org-dep-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.saveDepartment(box);
    });
    box.querySelector("#org-team-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.saveTeam(box);
    });
    const cellForm = box.querySelector("#org-cell-form");
    if (cellForm) {
      box.querySelector("#org-cell").addEventListener("change", (ev) => {
        this.cellId = ev.target.value;
        delete this.status["org-cell-status"];
        this.render();
        $("#org-cell")?.focus();
      });
      cellForm.addEventListener("submit", (ev) => {
        ev.preventDefault();
        this.saveCell(box);
      });
    }
    box.querySelector("#org-cell-file").addEventListener("change", async (ev) => {
      await this.importCells(ev.target.files[0], box.querySelector("#org-import-replace").checked);
      ev.target.value = "";
    });
  }

  async saveDepartment(box) {
    const value = (sel) => box.querySelector(sel).value.trim();
    const body = {
      name: value("#org-dep-name"),
      line: value("#org-dep-line"),
      supervisor: value("#org-dep-supervisor") || null,
      commander: value("#org-dep-commander") || null,
    };
    const id = this.editing.department;
    try {
      if (id) await api(`/api/v1/departments/${encodeURIComponent(id)}`, { method: "PUT", body: { ...body, site: this.departments.find((d) => d.id === id)?.site ?? null } });
      else await api("/api/v1/departments", { method: "POST", body });
    } catch (err) {
      this.setStatus("org-dep-status", t("org.failed", { reason: err.message }), "error");
      return;
    }
    this.editing.department = null;
    this.status["org-dep-status"] = { text: t("org.saved"), cls: "ok", problems: [] };
    await this.open();
  }

  async saveTeam(box) {
    const value = (sel) => box.querySelector(sel).value.trim();
    const body = {
      site: this.site(),
      name: value("#org-team-name"),
      members: usernames(value("#org-team-members")),
      leader: value("#org-team-leader") || null,
    };
    const id = this.editing.team;
    try {
      if (id) await api(`/api/v1/teams/${encodeURIComponent(id)}`, { method: "PUT", body });
      else await api("/api/v1/teams", { method: "POST", body });
    } catch (err) {
      this.setStatus("org-team-status", t("org.failed", { reason: err.message }), "error");
      return;
    }
    this.editing.team = null;
    this.status["org-team-status"] = { text: t("org.saved"), cls: "ok", problems: [] };
    await this.open();
  }

  async saveCell(box) {
    const departments = {};
    for (const sel of box.querySelectorAll(".org-cell-dep")) if (sel.value) departments[sel.dataset.line] = sel.value;
    const cellId = box.querySelector("#org-cell").value;
    const body = { team_id: box.querySelector("#org-cell-team").value || null, departments };
    try {
      await api(`/api/v1/grid-cells/${encodeURIComponent(cellId)}/responsibility`, { method: "PUT", body });
      this.dash.cells.upsert(await api(`/api/v1/grid-cells/${encodeURIComponent(cellId)}`));
    } catch (err) {
      this.setStatus("org-cell-status", t("org.failed", { reason: err.message }), "error");
      return;
    }
    this.setStatus("org-cell-status", t("org.saved"), "ok");
  }

  async importCells(file, replace) {
    if (!file) return;
    const d = this.dash;
    this.setStatus("org-import-status", t("detail.loading"), "");
    try {
      const q = new URLSearchParams({ site: this.site(), replace: String(replace) });
      const res = await api(`/api/v1/grid-cells/import?${q}`, {
        method: "POST",
        body: await file.text(),
        headers: { "Content-Type": "application/geo+json" },
      });
      this.setStatus("org-import-status", t("org.imported", {
        n: res.imported, created: res.created, updated: res.updated, deleted: res.deleted,
      }), "ok");
      d.cells.set(await fetchAll("/api/v1/grid-cells", d.config.site ? { site: d.config.site } : {}));
    } catch (err) {
      // The hub lists every problem ("feature 3 (id 'c-12'): properties.name: missing; ...").
      const [head, ...rest] = err.message.split(": ");
      const problems = rest.length && /problems?, nothing imported$/.test(head) ? rest.join(": ").split("; ") : [err.message];
      this.setStatus("org-import-status", t("org.import_failed"), "error", problems);
    }
  }
}
