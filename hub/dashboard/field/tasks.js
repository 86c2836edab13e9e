// "My tasks": the incidents assigned to the signed-in worker (GET /api/v1/tasks), with accept,
// start ("in progress") and done (with a note). These need the hub: offline, the list says so
// rather than showing a stale one a worker might act on.
import { api } from "/ui/js/api.js";
import { h, fill } from "/ui/js/dom.js";
import { t, formatDateTime } from "/ui/js/i18n.js";

export class TasksView {
  constructor(list, note) {
    this.list = list;
    this.note = note;
    this.items = [];
  }

  async refresh() {
    if (!navigator.onLine) {
      fill(this.list);
      this.note.textContent = t("field.tasks.offline");
      return;
    }
    try {
      const page = await api("/api/v1/tasks?limit=100");
      this.items = page.items;
      this.note.textContent = this.items.length ? "" : t("field.tasks.empty");
      this.render();
    } catch (err) {
      this.note.textContent = t("field.tasks.failed", { error: err.message });
    }
  }

  render() {
    fill(this.list, this.items.map((task) => this.card(task)));
  }

  card(task) {
    const noteId = `task-note-${task.id}`;
    const error = h("p", { class: "error", role: "alert" });
    const note = h("textarea", { id: noteId, rows: "2", maxlength: "20000" });
    const act = async (button, path, body, needsNote) => {
      error.textContent = "";
      if (needsNote && !note.value.trim()) {
        error.textContent = t("field.tasks.note_required");
        note.focus();
        return;
      }
      button.disabled = true;
      try {
        const updated = await api(`/api/v1/tasks/${encodeURIComponent(task.id)}/${path}`, {
          method: "POST", body,
        });
        Object.assign(task, updated);
        const fresh = this.card(task);
        fresh.querySelector(".task-status").textContent = t(`field.tasks.done_${path}`);
        item.replaceWith(fresh);
      } catch (err) {
        button.disabled = false;
        error.textContent = err.status === 409 ? t("field.tasks.changed") : err.message;
        if (err.status === 409) this.refresh();
      }
    };
    const actions = [];
    if (task.state === "assigned") {
      const accept = h("button", { type: "button", class: "task-accept" }, t("field.tasks.accept"));
      accept.addEventListener("click", () => act(accept, "accept", { note: note.value }, false));
      const start = h("button", { type: "button", class: "task-start" }, t("field.tasks.start"));
      start.addEventListener("click", () => act(start, "start", { version: task.version }, false));
      actions.push(accept, start);
    }
    if (task.state === "assigned" || task.state === "in_progress") {
      const done = h("button", { type: "button", class: "task-done" }, t("field.tasks.done"));
      done.addEventListener("click", () => act(
        done, "done", { version: task.version, note: note.value }, true,
      ));
      actions.push(done);
    }
    const accepted = (task.timeline || []).some((e) => e.kind === "accepted");
    const item = h("li", { class: "item task", "data-number": task.number },
      h("div", { class: "head" },
        h("span", { class: "number" }, task.number),
        h("span", { class: "state", "data-state": task.state }, t(`field.task_state.${task.state}`)),
        accepted ? h("span", { class: "hint" }, t("field.tasks.accepted")) : null,
      ),
      h("strong", null, task.title),
      task.description ? h("p", { class: "desc" }, task.description) : null,
      task.deadline_at ? h("p", { class: "hint" }, t("field.tasks.deadline", { at: formatDateTime(task.deadline_at) })) : null,
      actions.length ? h("label", { for: noteId }, t("field.tasks.note")) : null,
      actions.length ? note : null,
      actions.length ? h("div", { class: "actions" }, actions) : null,
      h("p", { class: "ok task-status", role: "status" }),
      error,
    );
    return item;
  }
}
