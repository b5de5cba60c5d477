// Compare: the curves of several runs overlaid (test solid, train dotted), named by what differs
// between their specs (for example one spec at several weight decays).
import { $, NotFound, el, fillTable, flatten, fmt, getJSON, listAll, notice, pct, shortId, sizeLabel, start, statusBadge, taskLabel } from "./common.js";
import { curve, draw, plotlyText } from "./charts.js";

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];
const MAX_RUNS = 10;

function chosenIds() {
  const raw = new URLSearchParams(location.search).get("ids") || "";
  return [...new Set(raw.split(",").map((s) => s.trim()).filter(Boolean))].slice(0, MAX_RUNS);
}

/** For each run, "key=value" of the spec fields that differ between the runs (else its short id). */
function differences(runs) {
  const flat = runs.map((r) => flatten(r.spec));
  const keys = [...new Set(flat.flatMap((f) => Object.keys(f)))].filter((k) => new Set(flat.map((f) => f[k])).size > 1);
  return runs.map((r, i) => {
    const parts = keys.map((k) => `${k.split(".").pop()}=${flat[i][k] ?? "—"}`);
    return parts.length ? parts.join(", ") : shortId(r.id);
  });
}

async function loadRun(id) {
  try {
    const exp = await getJSON(`/experiments/${encodeURIComponent(id)}`);
    const metrics = await getJSON(`/experiments/${encodeURIComponent(id)}/metrics`);
    return { exp, columns: metrics.columns || {} };
  } catch (err) {
    if (err instanceof NotFound) return { missing: id };
    throw err;
  }
}

async function showComparison(ids) {
  const loaded = await Promise.all(ids.map(loadRun));
  const missing = loaded.filter((r) => r.missing).map((r) => r.missing);
  if (missing.length) notice(`Not found (no such run that you can see): ${missing.join(", ")}`, "error");
  const runs = loaded.filter((r) => !r.missing);
  const names = differences(runs.map((r) => r.exp));
  const acc = [];
  const loss = [];
  runs.forEach((r, i) => {
    const colour = PALETTE[i % PALETTE.length];
    const name = plotlyText(names[i]);
    acc.push(curve(r.columns, "test_acc", { name: `${name} test`, legendgroup: String(i), line: { color: colour } }));
    acc.push(curve(r.columns, "train_acc", { name: `${name} train`, legendgroup: String(i), line: { color: colour, dash: "dot" } }));
    loss.push(curve(r.columns, "test_loss", { name: `${name} test`, legendgroup: String(i), line: { color: colour } }));
    loss.push(curve(r.columns, "train_loss", { name: `${name} train`, legendgroup: String(i), line: { color: colour, dash: "dot" }, showlegend: false }));
  });
  draw("chart-acc", acc, { title: "accuracy", y: "accuracy", layout: { yaxis: { range: [-0.02, 1.02], title: { text: "accuracy" } } } });
  draw("chart-loss", loss, { title: "loss", y: "loss", log: { y: true } });
  $("compare-what").textContent = runs.length ? `${runs.length} runs` : "choose runs below";
  fillTable(
    $("compare-table"),
    ["run", "differs by", "status", "task", "n or fraction", "test acc", "generalized at", "grokked"],
    runs.map((r, i) => [
      el("a", { href: `/runs/${encodeURIComponent(r.exp.id)}` }, shortId(r.exp.id)),
      names[i],
      statusBadge(r.exp.status),
      taskLabel(r.exp.spec?.task),
      sizeLabel(r.exp.spec?.data),
      pct(r.exp.summary?.test_acc),
      fmt(r.exp.summary?.epoch_generalized),
      fmt(r.exp.summary?.grokked),
    ]),
  );
}

async function showPicker(ids) {
  const items = await listAll("/experiments", {}, 500);
  fillTable(
    $("picker"),
    ["", "run", "status", "task", "n or fraction", "optimizer", "lr", "wd", "seed"],
    items.map((r) => [
      el("input", { type: "checkbox", value: r.id, checked: ids.includes(r.id), "aria-label": `choose ${r.id}` }),
      shortId(r.id),
      statusBadge(r.status),
      taskLabel(r.spec?.task),
      sizeLabel(r.spec?.data),
      r.spec?.training?.optimizer ?? "—",
      fmt(r.spec?.training?.lr),
      fmt(r.spec?.training?.weight_decay),
      fmt(r.spec?.seed),
    ]),
  );
  $("apply").addEventListener("click", () => {
    const chosen = [...$("picker").querySelectorAll("input:checked")].map((b) => b.value).slice(0, MAX_RUNS);
    location.assign(`/compare?ids=${chosen.map(encodeURIComponent).join(",")}`);
  });
}

async function main() {
  const ids = chosenIds();
  await showComparison(ids);
  await showPicker(ids);
}

start(main, "run");
