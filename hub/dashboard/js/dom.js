// Building the page from data: elements and text nodes, never markup parsed from a string.
// A device name, an alert title or a POI property is shown as text wherever it lands, so no
// value a device or a user sets can become an element or a script. ESLint (eslint.config.js)
// bans innerHTML, outerHTML, insertAdjacentHTML, document.write and the like in js/.

const SVG_NS = "http://www.w3.org/2000/svg";

// Attributes that would run or load something from a value: never set from here.
const FORBIDDEN_ATTR = /^(on|srcdoc$|formaction$)/i;
const URL_ATTR = /^(href|src|action|xlink:href)$/i;
const SCRIPT_SCHEMES = new Set(["javascript", "vbscript"]);

// A javascript: URL runs when followed; a browser's URL parser skips control characters and
// spaces, so they are dropped before looking at the scheme.
function isScriptUrl(value) {
  const compact = [...String(value)].filter((c) => c > " ").join("").toLowerCase();
  const colon = compact.indexOf(":");
  return colon > 0 && SCRIPT_SCHEMES.has(compact.slice(0, colon));
}

function setAttributes(el, attrs) {
  if (!attrs) return;
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (FORBIDDEN_ATTR.test(name)) throw new Error(`attribute ${name} is not set from data`);
    if (URL_ATTR.test(name) && isScriptUrl(value)) throw new Error(`script URL in ${name}`);
    if (name === "style") {
      for (const [prop, v] of Object.entries(value)) el.style.setProperty(prop, String(v));
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
}

function childNodes(children) {
  const out = [];
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false || c === "") continue;
    // Strings become Text nodes (append never parses them).
    out.push(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return out;
}

// h("span", {class: "sev", style: {background: "#fff"}}, "text", otherNode, [more, nodes])
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttributes(el, attrs);
  el.append(...childNodes(children));
  return el;
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttributes(el, attrs);
  el.append(...childNodes(children));
  return el;
}

// Replace an element's content with nodes (or text).
export function fill(el, ...children) {
  el.replaceChildren(...childNodes(children));
  return el;
}

// The one place markup is made from a value: Leaflet's attribution control takes only an
// HTML string (it sets innerHTML itself). Everything else uses h()/svg()/fill().
export function escapeHtml(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}
