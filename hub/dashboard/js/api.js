// Same-origin calls to the hub API; the HttpOnly session cookie authenticates them.
export class ApiError extends Error {
  // `code` names the hub's rule when it gives one (e.g. "quality.no_face").
  constructor(status, detail, code = null) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export async function api(path, { method = "GET", body, headers = {}, raw = false } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (body !== undefined) {
    if (typeof body === "string" || body instanceof Blob || body instanceof FormData) {
      init.body = body;
    } else {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
  }
  const res = await fetch(path, init);
  if (!res.ok) {
    let detail = "";
    let code = null;
    try {
      const data = await res.json();
      detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
      code = typeof data.code === "string" ? data.code : null;
    } catch {
      detail = res.statusText;
    }
    throw new ApiError(res.status, detail, code);
  }
  if (raw) return res;
  if (res.status === 204) return null;
  return res.json();
}

// Follow next_cursor until the end or `max` items; works for {items} and FeatureCollections.
export async function fetchAll(path, params = {}, max = 20000) {
  const out = [];
  let cursor = null;
  do {
    const q = new URLSearchParams({ ...params, limit: "1000" });
    if (cursor) q.set("cursor", cursor);
    const page = await api(`${path}?${q}`);
    out.push(...(page.items || page.features || []));
    cursor = page.next_cursor;
  } while (cursor && out.length < max);
  return out;
}
