// Plotly charts of the dashboard, drawn from the API's JSON columns. Plotly itself is served by this
// process from the installed `plotly` package (/assets/vendor/plotly.min.js): nothing from a CDN.
//
// Every chart zooms (drag; double-click resets), shows values on hover, and has buttons that switch
// its axes between linear and log. Text from the API (run names, spec values) is passed through
// plotlyText(), so Plotly shows it as text and never as its own little HTML.

/* global Plotly */

export const STAGE_COLOURS = { lazy: "#f2d7a6", independent: "#bfe3c4", interactive: "#c5d5f2" };
const CONFIG = { responsive: true, displaylogo: false, scrollZoom: false };

/** Text for Plotly labels: its pseudo-HTML is neutralised, so "<script>" shows as those characters. */
export function plotlyText(value) {
  return String(value ?? "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;");
}

/** A column as numbers, null where the value is missing (NaN/None arrive as null). */
function numbers(values) {
  return (values || []).map((v) => (typeof v === "number" && Number.isFinite(v) ? v : null));
}

/** One line trace of `columns[name]` against epoch (gaps where a value was not measured). */
export function curve(columns, name, extra = {}) {
  return {
    type: "scatter",
    mode: "lines",
    x: numbers(columns.epoch),
    y: numbers(columns[name]),
    name: plotlyText(name),
    connectgaps: true,
    hovertemplate: "%{fullData.name}: %{y:.4g}<extra>epoch %{x}</extra>",
    ...extra,
  };
}

/** The linear/log switches for the given axes ("x", "y"), as Plotly update menus. */
function logButtons(axes, startLog = {}) {
  return axes.map((axis, i) => ({
    type: "buttons",
    direction: "right",
    showactive: true,
    active: startLog[axis] ? 1 : 0,
    x: 1 - i * 0.4,
    xanchor: "right",
    y: 1.2,
    yanchor: "top",
    font: { size: 11 },
    buttons: [
      { label: `${axis} linear`, method: "relayout", args: [{ [`${axis}axis.type`]: "linear" }] },
      { label: `${axis} log`, method: "relayout", args: [{ [`${axis}axis.type`]: "log" }] },
    ],
  }));
}

/** Shaded stage rectangles and memorized/generalized lines from a timeline answer. */
export function stageShapes(timeline) {
  const shapes = [];
  for (const st of timeline?.stages || []) {
    shapes.push({
      type: "rect",
      xref: "x",
      yref: "paper",
      x0: st.start_epoch,
      x1: Math.max(st.end_epoch, st.start_epoch + 1e-9),
      y0: 0,
      y1: 1,
      fillcolor: STAGE_COLOURS[st.name] || "#dddddd",
      opacity: 0.55,
      line: { width: 0 },
      layer: "below",
    });
  }
  const events = timeline?.events || {};
  for (const [key, dash] of [
    ["memorized", "dot"],
    ["generalized", "dash"],
  ]) {
    if (typeof events[key] === "number") {
      shapes.push({
        type: "line",
        xref: "x",
        yref: "paper",
        x0: events[key],
        x1: events[key],
        y0: 0,
        y1: 1,
        line: { color: "#222", width: 1, dash },
      });
    }
  }
  return shapes;
}

/** Draw (or redraw) a chart into the element with id `id`. */
export function draw(id, traces, { title = "", x = "epoch", y = "", logAxes = ["x", "y"], log = {}, layout = {} } = {}) {
  const base = {
    title: { text: plotlyText(title), font: { size: 14 }, x: 0, xanchor: "left" },
    margin: { l: 56, r: 16, t: 64, b: 44 },
    xaxis: { title: { text: plotlyText(x) }, type: log.x ? "log" : "linear", automargin: true },
    yaxis: { title: { text: plotlyText(y) }, type: log.y ? "log" : "linear", automargin: true },
    hovermode: "closest",
    legend: { orientation: "h", y: -0.22 },
    updatemenus: logButtons(logAxes, log),
    font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#fff",
  };
  return Plotly.react(id, traces, { ...base, ...layout }, CONFIG);
}

/** Append rows to the traces of a drawn chart: `extra[i]` = {x: [...], y: [...]} for trace i. */
export function extend(id, extra) {
  const xs = extra.map((e) => e.x);
  const ys = extra.map((e) => e.y);
  return Plotly.extendTraces(id, { x: xs, y: ys }, extra.map((_, i) => i));
}

/** How many points a chart draws (all traces): what the browser tests watch grow. */
export function pointCount(id) {
  const gd = document.getElementById(id);
  return (gd?.data || []).reduce((n, t) => n + (t.x ? t.x.length : 0), 0);
}
