// What every dashboard page shares: the signed-in token, calls to the public REST API, DOM helpers
// that only ever set text (never HTML), and the number formats.
//
// The token lives in this tab's sessionStorage under TOKEN_KEY: never in a URL, never in a cookie.
// A 401 from the API (no, wrong or revoked token) drops it and sends the user to the sign-in page;
// a 404 (unknown id, or another user's: the API answers both alike) becomes a NotFound error that
// the page shows as "not found".

export const API = "/api/v1";
const TOKEN_KEY = "li2.token";
export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

export class NotFound extends Error {}
export class ApiError extends Error {}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function keepToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  location.assign("/signin");
}

/** Go to the sign-in page, coming back to this page (path and query only) afterwards. */
export function toSignIn(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  const next = encodeURIComponent(location.pathname + location.search);
  location.replace(`/signin?next=${next}${reason ? "&why=" + encodeURIComponent(reason) : ""}`);
  return new Promise(() => {}); // never settles: the page is going away
}

/** fetch() of an API path with the token; returns the Response (ok) or throws NotFound / ApiError. */
export async function request(path, { method = "GET", body, bearer = token() } = {}) {
  if (!bearer) return toSignIn();
  const headers = { Authorization: `Bearer ${bearer}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
  });
  if (response.status === 401) return toSignIn("expired");
  if (response.status === 404) throw new NotFound(path);
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      message = (await response.json()).message || message;
    } catch {
      /* not JSON */
    }
    throw new ApiError(message);
  }
  return response;
}

export async function getJSON(path) {
  return (await request(path)).json();
}

export async function postJSON(path, body) {
  return (await request(path, { method: "POST", body })).json();
}

/** Every item of a paginated list endpoint (page by page, up to `limit` items). */
export async function listAll(path, params = {}, limit = 2000) {
  const items = [];
  for (let page = 1; items.length < limit; page += 1) {
    const query = new URLSearchParams({ ...params, page: String(page), page_size: "500" });
    const body = await getJSON(`${path}?${query}`);
    items.push(...(body.items || []));
    if (!body.items || body.items.length < 500 || items.length >= (body.total ?? 0)) break;
  }
  return items;
}

/** Download an API resource (CSV, checkpoint) with the token, as a file the browser saves. */
export async function download(path, filename) {
  const blob = await (await request(path)).blob();
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// -- DOM: text only -------------------------------------------------------------------------------

/** A new element; `props` are properties or attributes; children are nodes or text (as text). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function $(id) {
  return document.getElementById(id);
}

export function setText(id, text) {
  const node = $(id);
  if (node) node.textContent = text ?? "";
  return node;
}

/** Replace a table's content: header names and rows of cells (text or nodes). */
export function fillTable(table, headers, rows, { headerProps = () => ({}) } = {}) {
  table.replaceChildren(
    el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", headerProps(h, i), h)))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c ?? "—"))))),
  );
  return table;
}

export function notice(text, kind = "info") {
  const box = $("notice");
  box.textContent = text;
  box.className = `notice ${kind}`;
  box.hidden = !text;
}

/** The page for an id the API does not show you: unknown, or another user's (it cannot tell which). */
export function showNotFound(what) {
  notice(`Not found: there is no ${what} with this id that you can see.`, "error");
  for (const id of ["run-body", "sweep-body"]) if ($(id)) $(id).hidden = true;
}

/** The page's frame: sign-out button, current nav item; sends a signed-out visitor to sign in. */
export function frame() {
  if (!token()) return toSignIn();
  const out = $("signout");
  out.hidden = false;
  out.addEventListener("click", signOut);
  const current = document.body.dataset.page;
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === current || (current === "run" && a.dataset.nav === "runs")) a.classList.add("current");
    if (current === "sweep" && a.dataset.nav === "sweeps") a.classList.add("current");
  }
  return Promise.resolve();
}

/** Run a page's async main(), turning NotFound/ApiError into a notice instead of a blank page. */
export function start(main, what = "item") {
  frame()
    .then(main)
    .catch((err) => {
      if (err instanceof NotFound) showNotFound(what);
      else notice(`Could not load this page: ${err.message}`, "error");
    });
}

// -- formats --------------------------------------------------------------------------------------

export function fmt(v, digits = 4) {
  if (v === null || v === undefined || v === "") return "—";
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "number") {
    if (!Number.isFinite(v)) return "—";
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : String(Number(v.toPrecision(digits)));
  }
  return String(v);
}

export function pct(v) {
  return typeof v === "number" && Number.isFinite(v) ? `${(100 * v).toFixed(1)} %` : "—";
}

export function ago(iso) {
  if (!iso) return "—";
  return duration((Date.now() - Date.parse(iso)) / 1000);
}

export function duration(seconds) {
  if (!Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function shortId(id) {
  return String(id ?? "").slice(0, 8);
}

// -- specs ----------------------------------------------------------------------------------------

function factorial(n) {
  let f = 1;
  for (let i = 2; i <= n; i += 1) f *= i;
  return f;
}

/** M, the size of the task's set (the same rule as li2.spec.task_order); null if unknown. */
export function taskOrder(task = {}) {
  switch (task.group) {
    case "cyclic":
      return task.order;
    case "product":
      return (task.factors || []).reduce((a, b) => a * b, 1);
    case "dihedral":
      return 2 * task.n;
    case "symmetric":
      return factorial(task.n);
    case "alternating":
      return factorial(task.n) / 2;
    case "quaternion":
      return 8;
    case "multiplicative":
      return task.prime - 1;
    case "table":
      return (task.table || []).length;
    case "expression":
      return task.modulus;
    default:
      return null;
  }
}

/** "cyclic 23", "dihedral n=5", "expression x*y+1 mod 7", ... (text, shown as text). */
export function taskLabel(task = {}) {
  const g = task.group ?? "?";
  if (g === "cyclic") return `cyclic ${task.order}`;
  if (g === "product") return `product ${(task.factors || []).join("×")}`;
  if (g === "expression") return `expression ${task.expression} mod ${task.modulus}`;
  if (g === "multiplicative") return `multiplicative mod ${task.prime}`;
  if (g === "table") return `table ${(task.table || []).length}×${(task.table || []).length}`;
  if (task.n !== undefined) return `${g} n=${task.n}`;
  return String(g);
}

/** The data option as given: "n=108", "90 %", or "1.5× critical". */
export function sizeLabel(data = {}) {
  if (data.train_size != null) return `n=${data.train_size}`;
  if (data.train_fraction != null) return pct(data.train_fraction);
  if (data.critical_multiple != null) return `${fmt(data.critical_multiple)}× critical`;
  return "—";
}

/** A spec flattened to {"training.lr": 0.01, ...} (for "what differs between these runs"). */
export function flatten(obj, prefix = "", out = {}) {
  for (const [k, v] of Object.entries(obj || {})) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, key, out);
    else out[key] = JSON.stringify(v);
  }
  return out;
}

export function statusBadge(status) {
  return el("span", { class: `badge ${status}` }, status);
}
