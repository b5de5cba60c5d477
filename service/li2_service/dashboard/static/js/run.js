// One run: curves (live while it trains), stages, timeline table, diagnostics, irrep spectrum, node
// energies, the theory's predictions next to what happened, spec, checkpoints, CSV, cancel.
//
// Reads GET /experiments/{id}, .../metrics (?since= while it trains), .../timeline, .../features,
// .../predictions and .../checkpoints: the same endpoints as the SDK.
import {
  $,
  ApiError,
  TERMINAL,
  ago,
  download,
  el,
  fillTable,
  fmt,
  getJSON,
  notice,
  pct,
  postJSON,
  setText,
  shortId,
  sizeLabel,
  start,
  statusBadge,
  taskLabel,
  taskOrder,
} from "./common.js";
import { curve, draw, extend, plotlyText, stageShapes } from "./charts.js";

const runId = document.body.dataset.id || "";
const base = `/experiments/${encodeURIComponent(runId)}`;
const POLL_MS = 2000;
// The trainer's own columns (li2.trainer.TRAINER_COLUMNS); every other column is a diagnostic.
const CURVES = ["epoch", "train_acc", "test_acc", "train_loss", "test_loss"];
const DYNAMICS = ["gf_norm", "w_drift", "v_drift", "w_cos_step", "v_cos_step", "w_norm", "v_norm", "lr"];

const state = { columns: {}, lastEpoch: null, timeline: null, timer: null, exp: null };

// -- head -----------------------------------------------------------------------------------------

function showHead(exp) {
  state.exp = exp;
  const spec = exp.spec || {};
  const tr = spec.training || {};
  setText("run-title", `Run ${shortId(exp.id)}`).title = exp.id;
  $("run-status").replaceWith(Object.assign(statusBadge(exp.status), { id: "run-status" }));
  const p = exp.progress || {};
  setText(
    "run-progress",
    `epoch ${fmt(p.epoch)} of ${fmt(p.epochs)} (${pct(p.fraction)})` +
      (exp.started_at ? ` · started ${ago(exp.started_at)} ago` : ` · submitted ${ago(exp.created_at)} ago`),
  );
  setText(
    "run-task",
    [
      taskLabel(spec.task),
      `M=${fmt(taskOrder(spec.task))}`,
      sizeLabel(spec.data),
      `K=${fmt(spec.model?.hidden)} ${spec.model?.activation ?? ""}`,
      `${tr.optimizer ?? "?"} lr=${fmt(tr.lr)} wd=${fmt(tr.weight_decay)}`,
      `${fmt(tr.epochs)} epochs`,
      `seed ${fmt(spec.seed)}`,
      exp.id,
    ].join(" · "),
  );
  const error = $("run-error");
  error.hidden = !exp.error;
  error.textContent = exp.error ? `Error: ${exp.error}` : "";
  const cancel = $("cancel");
  cancel.hidden = TERMINAL.has(exp.status);
  cancel.disabled = Boolean(exp.cancel_requested);
  cancel.textContent = exp.cancel_requested ? "Cancel requested" : "Cancel run";
}

async function cancelRun() {
  if (!window.confirm("Cancel this run? A running run stops within seconds.")) return;
  const answer = await postJSON(`${base}/cancel`);
  notice(`Cancel requested: the run is ${answer.status}.`);
  showHead(await getJSON(base));
  if (!state.timer && !TERMINAL.has(state.exp.status)) schedule();
}

// -- curves ---------------------------------------------------------------------------------------

function curveTraces(columns) {
  const acc = [
    curve(columns, "train_acc", { line: { color: "#1f77b4" } }),
    curve(columns, "test_acc", { line: { color: "#d62728" } }),
  ];
  const loss = [
    curve(columns, "train_loss", { line: { color: "#1f77b4" } }),
    curve(columns, "test_loss", { line: { color: "#d62728" } }),
  ];
  return { acc, loss };
}

function stageTitle(timeline) {
  if (!timeline?.stages?.length) return "";
  const names = timeline.stages.map((s) => `${s.name} [${s.start_epoch}, ${s.end_epoch}]`).join(" → ");
  return names + (timeline.censored ? "  (censored)" : "");
}

function drawCurves() {
  const { acc, loss } = curveTraces(state.columns);
  const shapes = stageShapes(state.timeline);
  setText("stage-line", stageTitle(state.timeline));
  draw("chart-acc", acc, {
    title: "accuracy",
    y: "accuracy",
    layout: { shapes, yaxis: { title: { text: "accuracy" }, range: [-0.02, 1.02] } },
  });
  draw("chart-loss", loss, { title: "loss", y: "loss", log: { y: true }, layout: { shapes } });
  drawDiagnostics();
}

function drawDiagnostics() {
  const names = Object.keys(state.columns).filter((c) => !CURVES.includes(c));
  const measured = names.filter((c) => (state.columns[c] || []).some((v) => typeof v === "number"));
  const traces = measured.map((c) => curve(state.columns, c, { visible: DYNAMICS.includes(c) ? "legendonly" : true }));
  draw("chart-diag", traces, {
    title: "diagnostics (click a legend entry to show or hide it)",
    y: "value",
    layout: { shapes: stageShapes(state.timeline), legend: { orientation: "h", y: -0.3 } },
  });
}

/** Add new rows to the drawn curves without redrawing them (the live path). */
function appendRows(more) {
  const n = (more.epoch || []).length;
  if (!n) return;
  const known = new Set(Object.keys(state.columns));
  const before = (state.columns.epoch || []).length;
  for (const [name, values] of Object.entries(more)) {
    if (!known.has(name)) state.columns[name] = new Array(before).fill(null);
    state.columns[name].push(...values);
  }
  for (const name of known) if (!(name in more)) state.columns[name].push(...new Array(n).fill(null));
  const { acc, loss } = curveTraces(more);
  extend(
    "chart-acc",
    acc.map((t) => ({ x: t.x, y: t.y })),
  );
  extend(
    "chart-loss",
    loss.map((t) => ({ x: t.x, y: t.y })),
  );
  drawDiagnostics();
}

// -- finished-run panels ---------------------------------------------------------------------------

/** "key = value; ..." of a boundary's values; nested groups (at_start, at_end) as "key: (...)". */
function valuesText(values) {
  return Object.entries(values || {})
    .map(([k, v]) => (v && typeof v === "object" ? `${k}: (${valuesText(v)})` : `${k} = ${fmt(v)}`))
    .join("; ");
}

function showTimeline(tl) {
  if (!tl) {
    setText("timeline-summary", "The timeline is computed when the run has ended.");
    $("timeline").replaceChildren();
    return;
  }
  const ev = tl.events || {};
  setText(
    "timeline-summary",
    [
      `memorized at epoch ${fmt(ev.memorized)}`,
      `generalized at epoch ${fmt(ev.generalized)}`,
      `grokking delay ${fmt(ev.grokking_delay)} epochs`,
      tl.generalized_in ? `generalized in the ${tl.generalized_in} stage` : null,
      tl.censored ? `censored: never generalized (stalled in the ${tl.stalled_in || "last"} stage)` : null,
    ]
      .filter(Boolean)
      .join(" · "),
  );
  fillTable(
    $("timeline"),
    ["stage", "start epoch", "end epoch", "boundary criterion", "values at the boundary", "open"],
    (tl.stages || []).map((s) => [
      el("span", { class: `stage ${s.name}` }, s.name),
      fmt(s.start_epoch),
      fmt(s.end_epoch),
      s.criterion ?? "—",
      valuesText(s.values),
      fmt(Boolean(s.open)),
    ]),
  );
}

/** Heat map of each node's share of power per irrep (trivial irrep left out), nodes grouped by their
 * dominant irrep and, within a group, by how concentrated they are. */
function showSpectrum(features) {
  const spec = features?.spectrum;
  $("chart-spectrum").classList.toggle("empty", !spec?.power?.length);
  if (!spec?.power?.length) {
    setText("spectrum-summary", "No spectrum for this run (computed when a run ends; groups only).");
    return;
  }
  const labels = spec.labels;
  const keep = labels.map((l, i) => i).filter((i) => labels[i] !== "trivial");
  const shares = spec.power.map((row) => {
    const part = keep.map((i) => Math.max(row[i], 0));
    const sum = part.reduce((a, b) => a + b, 0) || 1;
    return part.map((v) => v / sum);
  }); // (nodes, irreps without trivial)
  const order = shares
    .map((row, j) => ({ j, top: row.indexOf(Math.max(...row)), max: Math.max(...row) }))
    .sort((a, b) => a.top - b.top || b.max - a.max);
  const z = keep.map((_, r) => order.map((o) => shares[o.j][r])); // (irreps, nodes)
  const nodeIds = order.map((o) => spec.nodes[o.j]);
  const total = (features.covered || []).length + (features.missing || []).length;
  setText(
    "spectrum-summary",
    `weighted concentration ${fmt(features.mean_concentration, 3)} · coverage ${(features.covered || []).length}/${total}` +
      ` irreps · ${fmt(features.concentrated_nodes)} of ${fmt(features.live_nodes)} live nodes concentrated`,
  );
  draw(
    "chart-spectrum",
    [
      {
        type: "heatmap",
        z,
        x: order.map((_, i) => i),
        y: keep.map((i) => plotlyText(labels[i])),
        customdata: keep.map(() => nodeIds),
        colorscale: "Magma",
        zmin: 0,
        zmax: 1,
        colorbar: { title: { text: "share" } },
        hovertemplate: "node %{customdata}<br>irrep %{y}: %{z:.3f}<extra></extra>",
      },
    ],
    {
      title: "irrep power share per node",
      x: "hidden node (grouped by dominant irrep)",
      y: "irrep",
      logAxes: [],
      layout: { yaxis: { type: "category", automargin: true } },
    },
  );
}

function showEnergies(features, result) {
  const snaps = result?.node_energies;
  const en = features?.energies;
  $("chart-energy").classList.toggle("empty", !(snaps?.epoch && snaps?.energies) && !en?.full);
  if (snaps?.epoch && snaps?.energies) {
    const nodes = snaps.energies[0]?.length || 0;
    const traces = [];
    for (let j = 0; j < nodes; j += 1) {
      traces.push({
        type: "scatter",
        mode: "lines",
        x: snaps.epoch,
        y: snaps.energies.map((row) => row[j]),
        showlegend: false,
        line: { width: 0.7 },
      });
    }
    draw("chart-energy", traces, { title: "node energies over training", y: "E(ŵ_j)" });
    return;
  }
  if (!en?.full) {
    $("chart-energy").replaceChildren(el("p", { class: "muted" }, "No node energies for this run yet."));
    return;
  }
  const conc = en.nodes.map((j) => features.nodes?.concentration?.[j] ?? null);
  const shapes = (en.theory_full_data || []).map((x) => ({
    type: "line",
    xref: "x",
    yref: "paper",
    x0: x,
    x1: x,
    y0: 0,
    y1: 1,
    line: { color: "#c00", dash: "dash", width: 1 },
  }));
  draw(
    "chart-energy",
    [
      {
        type: "scatter",
        mode: "markers",
        x: en.full,
        y: en.train,
        customdata: en.nodes,
        marker: { color: conc, colorscale: "Viridis", cmin: 0, cmax: 1, size: 7, colorbar: { title: { text: "concentration" } } },
        hovertemplate: "node %{customdata}<br>full %{x:.4g}<br>train %{y:.4g}<extra></extra>",
        name: "nodes",
      },
    ],
    {
      title: "E(ŵ_j), dashed: theory",
      x: "energy on full data",
      y: "energy on training set",
      layout: { shapes, showlegend: false },
    },
  );
}

function showPredictions(pred, exp, features) {
  const s = exp.summary || {};
  const done = TERMINAL.has(exp.status);
  const happened = (v) => (done ? v : "— (running)");
  const rows = [
    [
      "critical training size n* = c·M·ln M",
      `${fmt(pred.critical_train_size, 4)} (c = ${fmt(pred.c)}, ${pred.c_source ?? "theory"})`,
      `training size n = ${fmt(pred.train_size)} (${fmt(pred.train_to_critical_ratio, 3)}× n*)`,
    ],
    [
      "above the critical size, so it should generalize",
      fmt(pred.above_critical),
      happened(
        s.grokked === undefined
          ? "—"
          : `${s.grokked ? "generalized" : "did not generalize"}` +
              (s.epoch_generalized != null ? ` at epoch ${s.epoch_generalized}` : ""),
      ),
    ],
    ["critical training fraction", pct(pred.critical_train_fraction), happened(`final test accuracy ${pct(s.test_acc)}`)],
    [
      "width to cover every irrep",
      `${fmt(pred.width_to_cover_irreps)} (${pred.width_formula ?? ""})`,
      `K = ${fmt(pred.hidden)}` +
        (features ? `; ${(features.covered || []).length} of ${(features.covered || []).length + (features.missing || []).length} irreps covered` : ""),
    ],
    [
      "nodes needed to see every irrep class (coupon collector)",
      pred.coupon_collector
        ? `${fmt(pred.coupon_collector.expected, 3)} expected, ${fmt(pred.coupon_collector.whp)} w.h.p.`
        : "—",
      features ? `${fmt(features.concentrated_nodes)} concentrated nodes of ${fmt(features.live_nodes)}` : happened("—"),
    ],
  ];
  if (pred.note) rows.push(["note", pred.note, ""]);
  fillTable($("predictions"), ["", "the theory predicts", "what happened"], rows);
}

function showSpec(exp) {
  $("spec").textContent = JSON.stringify(exp.spec, null, 2);
}

function showCheckpoints(list) {
  fillTable(
    $("checkpoints"),
    ["epoch", "kind", "size", ""],
    list.map((c) => [
      fmt(c.epoch),
      c.kind,
      `${fmt(c.size / 1024, 3)} KiB`,
      el(
        "a",
        {
          href: "#",
          onclick: (e) => {
            e.preventDefault();
            download(`${base}/checkpoints/${encodeURIComponent(c.epoch)}`, `${runId}-${c.epoch}.safetensors`);
          },
        },
        "download",
      ),
    ]),
  );
  if (!list.length) $("checkpoints").replaceChildren(el("caption", {}, "no checkpoints stored"));
}

/** timeline/features of a run: null before it has ended (the API answers 409 then); predictions:
 * null if they cannot be made for this spec. */
async function optional(path) {
  try {
    return await getJSON(path);
  } catch (err) {
    if (err instanceof ApiError) return null;
    throw err;
  }
}

async function showFinished(exp, predictions) {
  const [metrics, timeline, features] = await Promise.all([
    getJSON(`${base}/metrics`),
    optional(`${base}/timeline`),
    optional(`${base}/features`),
  ]);
  state.columns = metrics.columns || {};
  state.lastEpoch = metrics.last_epoch;
  state.timeline = timeline && timeline.stages ? timeline : null;
  drawCurves();
  showTimeline(state.timeline);
  showSpectrum(features);
  showEnergies(features, null);
  showPredictions(predictions, exp, features);
  showCheckpoints(await getJSON(`${base}/checkpoints`));
  $("live").hidden = true;
  document.body.dataset.state = "finished";
}

// -- live -----------------------------------------------------------------------------------------

function schedule() {
  state.timer = setTimeout(poll, POLL_MS);
}

async function poll() {
  state.timer = null;
  try {
    const exp = await getJSON(base);
    showHead(exp);
    const since = state.lastEpoch == null ? "" : `?since=${encodeURIComponent(state.lastEpoch)}`;
    const page = await getJSON(`${base}/metrics${since}`);
    if (state.lastEpoch == null && !(state.columns.epoch || []).length) {
      state.columns = page.columns || {};
      drawCurves();
    } else {
      appendRows(page.columns || {});
    }
    state.lastEpoch = page.last_epoch ?? state.lastEpoch;
    if (page.complete || TERMINAL.has(exp.status)) {
      await showFinished(exp, (await optional(`${base}/predictions`)) || {});
      return;
    }
  } catch (err) {
    notice(`Live update failed (${err.message}); retrying.`, "error");
  }
  schedule();
}

async function main() {
  const exp = await getJSON(base);
  showHead(exp);
  $("cancel").addEventListener("click", () => cancelRun().catch((e) => notice(e.message, "error")));
  $("metrics-csv").addEventListener("click", (e) => {
    e.preventDefault();
    download(`${base}/metrics?format=csv`, `${runId}-metrics.csv`).catch((err) => notice(err.message, "error"));
  });
  $("run-body").hidden = false;
  showSpec(exp);
  const predictions = (await optional(`${base}/predictions`)) || {};
  if (TERMINAL.has(exp.status)) {
    await showFinished(exp, predictions);
    return;
  }
  document.body.dataset.state = "live";
  $("live").hidden = false;
  const first = await getJSON(`${base}/metrics`);
  state.columns = first.columns || {};
  state.lastEpoch = first.last_epoch;
  drawCurves();
  showTimeline(null);
  showSpectrum(null);
  showEnergies(null, null);
  showPredictions(predictions, exp, null);
  showCheckpoints(await getJSON(`${base}/checkpoints`));
  schedule();
}

start(main, "run");
