// Runs: every experiment the API lists for you (admins: everyone's), filtered and sorted in the
// browser, with the queue (what runs where, how long things wait) on top.
//
// The queue comes from GET /api/v1/queue where the service has it; otherwise it is built from the
// experiment list (running: since when, on which worker if the API says; queued: how long waiting).
import {
  NotFound,
  TERMINAL,
  $,
  ago,
  el,
  fillTable,
  fmt,
  getJSON,
  listAll,
  pct,
  setText,
  shortId,
  sizeLabel,
  start,
  statusBadge,
  taskLabel,
  taskOrder,
} from "./common.js";

const REFRESH_MS = 5000;

// Column: header, value for sorting/filtering, cell (node or text).
const COLUMNS = [
  { key: "pick", head: "", value: () => 0, cell: (r) => el("input", { type: "checkbox", value: r.id, "aria-label": `select ${r.id}` }) },
  { key: "id", head: "run", value: (r) => r.id, cell: (r) => el("a", { href: `/runs/${encodeURIComponent(r.id)}` }, shortId(r.id)) },
  { key: "status", head: "status", value: (r) => r.status, cell: (r) => statusBadge(r.status) },
  {
    key: "progress",
    head: "epoch",
    value: (r) => r.progress?.fraction ?? 0,
    cell: (r) => `${fmt(r.progress?.epoch)} / ${fmt(r.progress?.epochs)}`,
  },
  { key: "task", head: "task", value: (r) => taskLabel(r.spec?.task) },
  { key: "M", head: "M", value: (r) => taskOrder(r.spec?.task) },
  {
    key: "n",
    head: "n or fraction",
    value: (r) => r.spec?.data?.train_size ?? r.spec?.data?.train_fraction ?? r.spec?.data?.critical_multiple,
    cell: (r) => sizeLabel(r.spec?.data),
  },
  { key: "K", head: "K", value: (r) => r.spec?.model?.hidden },
  { key: "optimizer", head: "optimizer", value: (r) => r.spec?.training?.optimizer },
  { key: "lr", head: "lr", value: (r) => r.spec?.training?.lr },
  { key: "wd", head: "wd", value: (r) => r.spec?.training?.weight_decay },
  { key: "train_acc", head: "train acc", value: (r) => r.summary?.train_acc, cell: (r) => pct(r.summary?.train_acc) },
  { key: "test_acc", head: "test acc", value: (r) => r.summary?.test_acc, cell: (r) => pct(r.summary?.test_acc) },
  { key: "memorized", head: "memorized", value: (r) => r.summary?.epoch_memorized },
  { key: "generalized", head: "generalized", value: (r) => r.summary?.epoch_generalized },
  { key: "grokked", head: "grokked", value: (r) => r.summary?.grokked },
  { key: "created", head: "submitted", value: (r) => r.created_at, cell: (r) => `${ago(r.created_at)} ago` },
];

const view = { items: [], sortKey: "created", sortDir: -1, selected: new Set(), timer: null };

function compare(a, b) {
  if (a === b) return 0;
  if (a === undefined || a === null) return 1; // missing values last
  if (b === undefined || b === null) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

function visibleRows() {
  const words = $("filter").value.trim().toLowerCase().split(/\s+/).filter(Boolean);
  const grokked = $("grokked").value;
  const col = COLUMNS.find((c) => c.key === view.sortKey) || COLUMNS[0];
  return view.items
    .filter((r) => {
      if (grokked && Boolean(r.summary?.grokked) !== (grokked === "yes")) return false;
      if (!words.length) return true;
      const text = COLUMNS.map((c) => fmt(c.value(r))).join(" ").toLowerCase();
      return words.every((w) => text.includes(w));
    })
    .sort((a, b) => {
      const va = col.value(a);
      const vb = col.value(b);
      if (va === undefined || va === null) return 1;
      if (vb === undefined || vb === null) return -1;
      return view.sortDir * compare(va, vb);
    });
}

function render() {
  const rows = visibleRows();
  const table = fillTable(
    $("runs"),
    COLUMNS.map((c) => c.head + (c.key === view.sortKey ? (view.sortDir > 0 ? " ▲" : " ▼") : "")),
    rows.map((r) => COLUMNS.map((c) => (c.cell ? c.cell(r) : fmt(c.value(r))))),
    {
      headerProps: (_, i) => ({
        dataset: { key: COLUMNS[i].key },
        class: COLUMNS[i].key === "pick" ? "" : "sort",
        title: COLUMNS[i].key === "pick" ? "" : "sort by this column",
      }),
    },
  );
  for (const box of table.querySelectorAll("input[type=checkbox]")) box.checked = view.selected.has(box.value);
  setText("count", `${rows.length} of ${view.items.length} runs`);
  $("compare-selected").disabled = view.selected.size < 2;
}

function onTableClick(event) {
  const th = event.target.closest("th.sort");
  if (th) {
    const key = th.dataset.key;
    view.sortDir = view.sortKey === key ? -view.sortDir : 1;
    view.sortKey = key;
    render();
    return;
  }
  const box = event.target.closest("input[type=checkbox]");
  if (box) {
    if (box.checked) view.selected.add(box.value);
    else view.selected.delete(box.value);
    $("compare-selected").disabled = view.selected.size < 2;
  }
}

// -- queue ----------------------------------------------------------------------------------------

/** GET /api/v1/queue if this service has it (null otherwise). */
async function serviceQueue() {
  try {
    return await getJSON("/queue");
  } catch (err) {
    if (err instanceof NotFound) return null;
    throw err;
  }
}

function runLink(id) {
  return el("a", { href: `/runs/${encodeURIComponent(id)}` }, shortId(id));
}

function renderQueue(queue) {
  if (queue) {
    // GET /queue (docs/workers.md): running batches {worker, device, since, user, runs, run_ids (yours only)}
    // and waiting users {user, position, runs, batches, estimated_start_s, next_run_ids (yours only)}.
    setText("queue-source", `From the service's queue (${queue.dispatch} dispatch, ${fmt(queue.slots)} worker slot(s)).`);
    const firstRun = (ids, n) => (ids && ids.length ? runLink(ids[0]) : `${fmt(n)} run(s)`);
    fillTable(
      $("queue-running"),
      ["run", "worker", "device", "user", "running for"],
      (queue.running || []).map((r) => [firstRun(r.run_ids, r.runs), r.worker ?? "—", r.device ?? "—", r.user ?? "—", ago(r.since)]),
    );
    fillTable(
      $("queue-waiting"),
      ["next run", "user", "turn", "runs waiting", "estimated start"],
      (queue.waiting || []).map((w) => [
        firstRun(w.next_run_ids, w.runs),
        w.user ?? "—",
        fmt(w.position),
        fmt(w.runs),
        w.estimated_start_s == null ? "not measured yet" : `in ${Math.round(w.estimated_start_s)} s`,
      ]),
    );
    if (!(queue.running || []).length) $("queue-running").append(el("caption", {}, "nothing running"));
    if (!(queue.waiting || []).length) $("queue-waiting").append(el("caption", {}, "nothing waiting"));
    return;
  }
  setText("queue-source", "Your runs that are running or waiting (the service has no queue resource yet).");
  const running = view.items.filter((r) => r.status === "running");
  const waiting = view.items.filter((r) => r.status === "queued").sort((a, b) => compare(a.created_at, b.created_at));
  fillTable(
    $("queue-running"),
    ["run", "task", "worker", "epoch", "running for"],
    running.map((r) => [
      runLink(r.id),
      taskLabel(r.spec?.task),
      r.worker ?? r.claimed_by ?? "—",
      `${fmt(r.progress?.epoch)} / ${fmt(r.progress?.epochs)}`,
      ago(r.started_at),
    ]),
  );
  fillTable(
    $("queue-waiting"),
    ["run", "task", "position", "waiting for"],
    waiting.map((r, i) => [runLink(r.id), taskLabel(r.spec?.task), String(i + 1), ago(r.created_at)]),
  );
  if (!running.length) $("queue-running").append(el("caption", {}, "nothing running"));
  if (!waiting.length) $("queue-waiting").append(el("caption", {}, "nothing waiting"));
}

// -- load -----------------------------------------------------------------------------------------

async function load() {
  const status = $("status").value;
  view.items = await listAll("/experiments", status ? { status } : {});
  render();
  renderQueue(await serviceQueue());
  clearTimeout(view.timer);
  if (view.items.some((r) => !TERMINAL.has(r.status))) view.timer = setTimeout(() => load().catch(() => {}), REFRESH_MS);
}

async function main() {
  $("filter").addEventListener("input", render);
  $("grokked").addEventListener("change", render);
  $("status").addEventListener("change", () => load());
  $("runs").addEventListener("click", onTableClick);
  $("compare-selected").addEventListener("click", () => {
    location.assign(`/compare?ids=${[...view.selected].map(encodeURIComponent).join(",")}`);
  });
  await load();
}

start(main, "run");
