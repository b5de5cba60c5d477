// One sweep: progress, the scaling law with its band, the reference constant and the verdict in
// words (law.js), and a table of runs per group order M. Refreshes itself while runs are active.
//
// Reads GET /sweeps/{id}, /sweeps/{id}/runs, /sweeps/{id}/scaling-law (?partial=true while it
// runs) and /experiments/{id}/predictions (M, n and the reference constant; one run per distinct
// task and data section, since those decide M and n).
import { $, ApiError, TERMINAL, el, fillTable, fmt, getJSON, pct, setText, shortId, sizeLabel, start, statusBadge } from "./common.js";
import { drawLaw, verdict } from "./law.js";

const sweepId = document.body.dataset.id || "";
const base = `/sweeps/${encodeURIComponent(sweepId)}`;
const REFRESH_MS = 5000;

async function allRuns() {
  const body = await getJSON(`${base}/runs?page_size=1000`);
  return body.items || [];
}

/** M, n and the reference c per run, asking /predictions once per distinct (task, data). */
async function sizes(runs) {
  const byShape = new Map();
  for (const r of runs) {
    const key = JSON.stringify([r.spec?.task, r.spec?.data]);
    if (!byShape.has(key)) byShape.set(key, r.id);
  }
  const answers = new Map();
  await Promise.all(
    [...byShape].map(async ([key, id]) => answers.set(key, await getJSON(`/experiments/${encodeURIComponent(id)}/predictions`))),
  );
  return runs.map((r) => answers.get(JSON.stringify([r.spec?.task, r.spec?.data])) || {});
}

async function scalingLaw(status) {
  try {
    return await getJSON(`${base}/scaling-law${TERMINAL.has(status) ? "" : "?partial=true"}`);
  } catch (err) {
    if (err instanceof ApiError) return { error: err.message };
    throw err;
  }
}

function showHead(sweep) {
  setText("sweep-title", `Sweep ${shortId(sweep.id)}`).title = sweep.id;
  $("sweep-status").replaceWith(Object.assign(statusBadge(sweep.status), { id: "sweep-status" }));
  $("sweep-bar").style.width = `${Math.round(100 * (sweep.progress || 0))}%`;
  const c = sweep.counts || {};
  setText(
    "sweep-counts",
    `${pct(sweep.progress)} of ${sweep.n_runs} runs ended: ${c.succeeded ?? 0} succeeded, ${c.failed ?? 0} failed, ` +
      `${c.cancelled ?? 0} cancelled, ${c.running ?? 0} running, ${c.queued ?? 0} queued`,
  );
  setText(
    "sweep-grid",
    "grid: " +
      Object.entries(sweep.grid || {})
        .map(([path, values]) => `${path} ∈ {${(values || []).map((v) => JSON.stringify(v)).join(", ")}}`)
        .join(" × "),
  );
  $("live").hidden = TERMINAL.has(sweep.status);
}

function showPerM(runs, preds) {
  const groups = new Map();
  runs.forEach((r, i) => {
    const M = preds[i].order ?? "?";
    if (!groups.has(M)) groups.set(M, []);
    groups.get(M).push({ r, p: preds[i] });
  });
  const box = $("per-m");
  box.replaceChildren();
  for (const M of [...groups.keys()].sort((a, b) => a - b)) {
    const rows = groups.get(M).sort((a, b) => (a.p.train_size ?? 0) - (b.p.train_size ?? 0) || (a.r.spec?.seed ?? 0) - (b.r.spec?.seed ?? 0));
    const table = el("table", { class: "grid", dataset: { order: String(M) } });
    fillTable(
      table,
      ["run", "n", "as given", "n / n*", "seed", "status", "grokked", "generalized at", "test acc"],
      rows.map(({ r, p }) => [
        el("a", { href: `/runs/${encodeURIComponent(r.id)}` }, shortId(r.id)),
        fmt(p.train_size),
        sizeLabel(r.spec?.data),
        fmt(p.train_to_critical_ratio, 3),
        fmt(r.spec?.seed),
        statusBadge(r.status),
        fmt(r.summary?.grokked),
        fmt(r.summary?.epoch_generalized),
        pct(r.summary?.test_acc),
      ]),
    );
    box.append(el("h3", {}, `M = ${M}`), el("div", { class: "scroll" }, table));
  }
}

async function load() {
  const sweep = await getJSON(base);
  showHead(sweep);
  $("sweep-body").hidden = false;
  const runs = await allRuns();
  const preds = await sizes(runs);
  const reference = preds.find((p) => typeof p.c === "number")?.c ?? null;
  const law = await scalingLaw(sweep.status);
  const points = runs
    .map((r, i) => ({ r, p: preds[i] }))
    .filter(({ r, p }) => r.status === "succeeded" && p.order != null && p.train_size != null)
    .map(({ r, p }) => ({ M: p.order, n: p.train_size, ok: Boolean(r.summary?.grokked), id: r.id }));
  drawLaw({ law: law.error ? null : law, points, reference, chartId: "chart-law", pstarId: "chart-pstar", tableId: "law-table" });
  setText("verdict", law.error ? `No law yet: ${law.error}` : verdict(law, reference));
  showPerM(runs, preds);
  document.body.dataset.state = TERMINAL.has(sweep.status) ? "finished" : "live";
  if (!TERMINAL.has(sweep.status)) setTimeout(() => load().catch(() => {}), REFRESH_MS);
}

start(load, "sweep");
