// The scaling law n* ≈ c·M·ln M, drawn and put in words: shared by the sweep page and (once the
// service has /api/v1/searches) a critical-size search page, which needs only its own loader.
//
// Input: the law as GET /sweeps/{id}/scaling-law answers it ({c, ci95, critical: [{order, n_star,
// ci95, p_star, free: {n_star, bracket, n_runs, successes}}], curve, alternatives, note, ...}),
// the runs as points {M, n, ok, id}, and the paper's reference constant (from /predictions).
import { el, fillTable, fmt } from "./common.js";
import { draw, plotlyText } from "./charts.js";

const mlnm = (M) => M * Math.log(M);

/** Orders to draw the curves at: the law's own curve if fitted, else a range over the points. */
function orders(law, points) {
  if (law?.curve?.length) return law.curve.map((p) => p.order);
  const Ms = [...points.map((p) => p.M), ...(law?.critical || []).map((c) => c.order)].filter((m) => m > 2);
  if (!Ms.length) return [];
  const lo = Math.max(3, 0.8 * Math.min(...Ms));
  const hi = 1.1 * Math.max(...Ms);
  return Array.from({ length: 50 }, (_, i) => lo + ((hi - lo) * i) / 49);
}

/** The fit's verdict in words (the service's own `verdict` text when it gives one). */
export function verdict(law, reference) {
  if (!law) return "No scaling law yet: no run of this sweep has succeeded.";
  if (law.error) return `The scaling law cannot be fitted: ${law.error}`;
  const words = [];
  if (law.verdict) words.push(String(law.verdict));
  if (law.c == null) {
    words.push(`No constant fitted${law.note ? `: ${law.note}` : "."}`);
  } else {
    const [lo, hi] = law.ci95 || [];
    const fitted = (law.critical || []).filter((c) => c.n_star != null).length;
    words.push(
      `n* ≈ c·M·ln M with c = ${fmt(law.c, 3)}` +
        (lo != null && hi != null ? ` (95 % interval ${fmt(lo, 3)} to ${fmt(hi, 3)})` : " (no interval)") +
        `, from ${fitted} group order${fitted === 1 ? "" : "s"}.`,
    );
    if (reference != null && lo != null && hi != null) {
      words.push(
        lo <= reference && reference <= hi
          ? `The paper's constant ${fmt(reference)} lies inside this interval: the sweep agrees with the theory.`
          : `The paper's constant ${fmt(reference)} lies outside this interval: the sweep disagrees with the theory at this budget.`,
      );
    }
    if (law.r2 != null) words.push(`R² on log n* = ${fmt(law.r2, 3)}.`);
    const power = (law.alternatives || []).find((a) => String(a.form).includes("M^b"));
    const own = (law.alternatives || []).find((a) => !String(a.form).includes("M^b"));
    if (power && own && power.aic != null && own.aic != null) {
      const delta = power.aic - own.aic;
      words.push(
        `Against a free power law a·M^b (b = ${fmt(power.params?.b, 3)}): ΔAIC = ${fmt(delta, 3)}, ` +
          (Math.abs(delta) < 2 ? "too close to tell apart." : delta > 0 ? "M·ln M fits better." : "the power law fits better."),
      );
    }
    if (law.note) words.push(`Note: ${law.note}.`);
  }
  if (law.partial) words.push("(Partial: fitted on the runs that have succeeded so far.)");
  return words.join(" ");
}

// Draw the law (M against n, and p* = n* / M²) into two chart ids and the per-M table.
export function drawLaw({ law, points, reference, chartId, pstarId, tableId }) {
  const Ms = orders(law, points);
  const traces = [];
  // One marker trace per outcome; customdata carries the run id for the click-through.
  const outcome = (runs, name, symbol, color, label) => ({
    type: "scatter",
    mode: "markers",
    name,
    x: runs.map((p) => p.M),
    y: runs.map((p) => p.n),
    customdata: runs.map((p) => p.id),
    marker: { symbol, color, size: 8, opacity: 0.7 },
    hovertemplate: `M=%{x}, n=%{y}<br>%{customdata}<extra>${label}</extra>`,
  });
  traces.push(outcome(points.filter((p) => p.ok), "generalized", "circle", "#2ca02c", "generalized"));
  traces.push(outcome(points.filter((p) => !p.ok), "did not", "x", "#d62728", "did not generalize"));
  const crit = (law?.critical || []).filter((c) => c.n_star != null);
  traces.push({
    type: "scatter",
    mode: "markers",
    name: "n*(M)",
    x: crit.map((c) => c.order),
    y: crit.map((c) => c.n_star),
    marker: { symbol: "diamond", color: "#111", size: 11 },
    hovertemplate: "M=%{x}: n* = %{y:.4g}<extra></extra>",
  });
  const pstar = [];
  if (law?.c != null && Ms.length) {
    const [lo, hi] = law.ci95 || [];
    if (lo != null && hi != null) {
      traces.push({
        type: "scatter",
        mode: "lines",
        x: [...Ms, ...[...Ms].reverse()],
        y: [...Ms.map((M) => hi * mlnm(M)), ...[...Ms].reverse().map((M) => lo * mlnm(M))],
        fill: "toself",
        fillcolor: "rgba(0,0,0,0.12)",
        line: { width: 0 },
        name: plotlyText(`95 % band [${fmt(lo, 3)}, ${fmt(hi, 3)}]`),
        hoverinfo: "skip",
      });
    }
    traces.push({
      type: "scatter",
      mode: "lines",
      x: Ms,
      y: Ms.map((M) => law.c * mlnm(M)),
      name: plotlyText(`fit c·M·ln M, c = ${fmt(law.c, 3)}`),
      line: { color: "#111", width: 2 },
    });
    pstar.push({
      type: "scatter",
      mode: "lines",
      x: Ms,
      y: Ms.map((M) => (law.c * mlnm(M)) / (M * M)),
      name: "fit",
      line: { color: "#111" },
    });
  }
  if (reference != null && Ms.length) {
    traces.push({
      type: "scatter",
      mode: "lines",
      x: Ms,
      y: Ms.map((M) => reference * mlnm(M)),
      name: plotlyText(`theory, c = ${fmt(reference)}`),
      line: { color: "#1f77b4", dash: "dash" },
    });
    pstar.push({
      type: "scatter",
      mode: "lines",
      x: Ms,
      y: Ms.map((M) => (reference * mlnm(M)) / (M * M)),
      name: "theory",
      line: { color: "#1f77b4", dash: "dash" },
    });
  }
  const power = (law?.alternatives || []).find((a) => String(a.form).includes("M^b"));
  if (power?.params && Ms.length) {
    traces.push({
      type: "scatter",
      mode: "lines",
      x: Ms,
      y: Ms.map((M) => power.params.a * M ** power.params.b),
      name: plotlyText(`a·M^b, b = ${fmt(power.params.b, 3)}`),
      line: { color: "#9467bd", dash: "dot" },
      visible: "legendonly",
    });
  }
  for (const c of law?.critical || []) {
    // The order's raw bracket: n* lies above the largest failing size and at or below the
    // smallest succeeding one.
    const bracket = c.free?.bracket || {};
    const bound = { upper: bracket.smallest_succeeding, lower: bracket.largest_failing };
    for (const [side, symbol] of [
      ["upper", "triangle-down"],
      ["lower", "triangle-up"],
    ]) {
      if (bound[side] != null) {
        traces.push({
          type: "scatter",
          mode: "markers",
          x: [c.order],
          y: [bound[side]],
          name: `n* ${side === "upper" ? "≤" : ">"} bound`,
          showlegend: false,
          marker: { symbol, color: "#1f77b4", size: 11 },
          hovertemplate: `M=%{x}: n* ${side === "upper" ? "≤" : ">"} %{y}<extra>bracket</extra>`,
        });
      }
    }
  }
  pstar.push({
    type: "scatter",
    mode: "markers",
    x: crit.map((c) => c.order),
    y: crit.map((c) => c.p_star),
    name: "p*(M)",
    marker: { symbol: "diamond", color: "#111", size: 10 },
  });
  draw(chartId, traces, { title: "success and critical size n*(M)", x: "group order M", y: "training size n" });
  draw(pstarId, pstar, { title: "critical fraction p* = n*/M²", x: "group order M", y: "p*" });
  fillTable(
    document.getElementById(tableId),
    ["M", "n* (law)", "95 % interval", "p*", "own n*", "largest failing", "smallest succeeding", "runs", "generalized"],
    (law?.critical || []).map((c) => {
      const own = c.free || {};
      const bracket = own.bracket || {};
      return [
        fmt(c.order),
        fmt(c.n_star),
        c.ci95 && c.ci95[0] != null ? `${fmt(c.ci95[0])} – ${fmt(c.ci95[1])}` : "—",
        fmt(c.p_star),
        fmt(own.n_star),
        fmt(bracket.largest_failing),
        fmt(bracket.smallest_succeeding),
        fmt(own.n_runs),
        fmt(own.successes),
      ];
    }),
  );
  if (!(law?.critical || []).length) document.getElementById(tableId).replaceChildren(el("caption", {}, "no critical sizes yet"));
}
