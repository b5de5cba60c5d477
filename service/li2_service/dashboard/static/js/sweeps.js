// Sweeps: every sweep the API lists for you, with progress; each links to its page.
import { $, ago, el, fillTable, fmt, listAll, pct, shortId, start, statusBadge } from "./common.js";

function gridText(grid) {
  return Object.entries(grid || {})
    .map(([path, values]) => `${path} ∈ {${(values || []).map((v) => JSON.stringify(v)).join(", ")}}`)
    .join(" × ");
}

async function main() {
  const sweeps = await listAll("/sweeps");
  fillTable(
    $("sweeps"),
    ["sweep", "status", "runs", "ended", "succeeded", "failed", "grid", "law", "submitted"],
    sweeps.map((s) => [
      el("a", { href: `/sweeps/${encodeURIComponent(s.id)}` }, shortId(s.id)),
      statusBadge(s.status),
      fmt(s.n_runs),
      pct(s.progress),
      fmt(s.counts?.succeeded),
      fmt(s.counts?.failed),
      gridText(s.grid),
      s.has_scaling_law ? "fitted" : "—",
      `${ago(s.created_at)} ago`,
    ]),
  );
  if (!sweeps.length) $("sweeps").replaceChildren(el("caption", {}, "No sweeps yet: submit one with the SDK or `li2 sweep submit`."));
}

start(main, "sweep");
