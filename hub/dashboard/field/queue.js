// The phone's queue of reports (IndexedDB): a report is stored here, photos and voice note
// included, before anything is sent, and stays until the hub has answered with its
// confirmation number. Every report keeps the client_report_id it was given when it was
// filed, so however often it is sent (a lost answer, two open tabs, a crash mid-send) the hub
// files it once (POST /api/v1/field-reports is idempotent by that id).
const DB_NAME = "gw-field";
const STORE = "reports";

export const State = Object.freeze({
  QUEUED: "queued", // waiting for the network (or for the hub to take it)
  SENT: "sent", // the hub has it: number and status known
  REFUSED: "refused", // the hub refused it (422, 409, 413...): resending would not help
});

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

let dbPromise = null;

function db() {
  if (!dbPromise) {
    const open = indexedDB.open(DB_NAME, 1);
    open.onupgradeneeded = () => {
      const store = open.result.createObjectStore(STORE, { keyPath: "client_report_id" });
      store.createIndex("reporter", "reporter");
    };
    dbPromise = request(open);
  }
  return dbPromise;
}

async function tx(mode, fn) {
  const conn = await db();
  return new Promise((resolve, reject) => {
    const t = conn.transaction(STORE, mode);
    const out = fn(t.objectStore(STORE));
    t.oncomplete = () => resolve(out instanceof IDBRequest ? out.result : out);
    t.onerror = () => reject(t.error);
    t.onabort = () => reject(t.error || new Error("queue transaction aborted"));
  });
}

// A UUID for client_report_id (crypto.randomUUID needs a secure context; the field page is
// served over TLS or from localhost, where it exists; the fallback is the same v4 layout).
export function newReportId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function put(record) {
  return tx("readwrite", (store) => store.put(record));
}

export function get(id) {
  return tx("readonly", (store) => store.get(id));
}

// The reporter's reports, newest first.
export async function mine(reporter) {
  const rows = await tx("readonly", (store) => store.index("reporter").getAll(reporter));
  return rows.sort((a, b) => b.created_at.localeCompare(a.created_at));
}

// Change one record inside a transaction of its own (read, change, write), so two tabs never
// write back stale copies of each other's answers.
export function update(id, change) {
  return tx("readwrite", (store) => {
    const req = store.get(id);
    req.onsuccess = () => {
      if (req.result) store.put(change(req.result));
    };
  });
}
