"""``li2`` — the shell command of the SDK.

    li2 submit spec.json --wait          # or spec.yaml when PyYAML is installed
    li2 status ID | li2 list --status running | li2 cancel ID
    li2 timeline ID | li2 metrics ID --csv curves.csv
    li2 sweep submit sweep.json --wait | li2 sweep status ID | li2 sweep law ID
    li2 search start search.json --wait | li2 search status ID | li2 search law ID | li2 search cancel ID
    li2 list --order 23 --grokked --tag paper --sort=-final_test_acc | li2 download ID -o run.tar.gz
    li2 tag ID paper | li2 name ID "baseline" | li2 note ID "text" | li2 archive ID | li2 delete ID

    li2 wait ID | li2 features ID | li2 predictions ID | li2 checkpoints ID | li2 plots ID -o DIR
    li2 sweep list | li2 sweep cancel ID

Connection: ``--url/--token/--profile``, else LI2_URL/LI2_TOKEN, else ~/.config/li2lab/config.toml.
``--json`` prints machine-readable JSON instead of tables. Every command's ``--help`` ends with an
example (EXAMPLES); the exit codes (EXIT_CODES, also in ``li2 --help`` and docs/design.md) are 0 ok,
1 error (service, network, a scaling law that is not a fit), 2 bad input (unreadable spec file,
invalid spec, bad arguments), and for the commands that wait on a run (``wait``, ``submit --wait``,
``metrics --follow``) 3 the run failed, 4 it was cancelled, 5 the wait timed out; 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .client import Client
from .errors import Li2Error, ValidationError, WaitTimeout
from .experiments import Experiment
from .results import ScalingLaw
from .searches import Search
from .sweeps import Sweep, flatten

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2
EXIT_FAILED, EXIT_CANCELLED, EXIT_TIMEOUT, EXIT_INTERRUPTED = 3, 4, 5, 130
# What each exit code means: printed at the end of `li2 --help` and listed in docs/design.md.
EXIT_CODES = {
    EXIT_OK: "done; a waited-for run succeeded",
    EXIT_ERROR: "error: service, network, not found, a scaling law that is not a fit",
    EXIT_BAD_INPUT: "bad input: unreadable or invalid spec file, bad arguments",
    EXIT_FAILED: "the run failed (wait, submit --wait, metrics --follow)",
    EXIT_CANCELLED: "the run was cancelled (same commands)",
    EXIT_TIMEOUT: "the wait timed out; the run goes on (wait, submit --wait)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}
RUN_EXIT = {"succeeded": EXIT_OK, "failed": EXIT_FAILED, "cancelled": EXIT_CANCELLED}


class BadInput(Exception):
    """A local input problem (file missing, not JSON/YAML): exit code 2."""


# -- output helpers ----------------------------------------------------------------------------
def cell(v: Any) -> str:
    """One value as table text: None as '—', floats with 4 significant digits."""
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned text table with a dashed rule under the headers."""
    text = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in text]
    return "\n".join(lines)


def emit_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def answer(a: argparse.Namespace, data: Any, human: Callable[[], object], code: int = EXIT_OK) -> int:
    """How a command prints its answer: `data` as JSON with --json, else `human()` prints it for a
    person (called only then); the command's exit code is `code`."""
    if a.json:
        emit_json(data)
    else:
        human()
    return code


def read_document(path: str) -> dict:
    """Read a JSON (or, with PyYAML, YAML) file holding one object."""
    p = Path(path)
    try:
        text = sys.stdin.read() if path == "-" else p.read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from exc
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:
            raise BadInput(f"{path}: YAML files need PyYAML (pip install pyyaml), or use JSON") from exc
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BadInput(f"{path} is not valid YAML: {exc}") from exc
    else:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    if not isinstance(doc, dict):
        raise BadInput(f"{path} must hold one JSON/YAML object (a spec), not {type(doc).__name__}")
    return doc


def _task_name(spec: dict | None) -> str:
    task = (spec or {}).get("task") or {}
    size = next((task[k] for k in ("order", "n", "prime", "factors", "modulus") if k in task), "")
    return f"{task.get('group', '?')}({size})" if size != "" else str(task.get("group", "?"))


def _experiment_rows(exps: Iterable[Experiment]) -> list[list[Any]]:
    rows = []
    for e in exps:
        p, s = e.progress, e.summary
        epochs = f"{p.get('epoch', '—')}/{p.get('epochs', '—')}" if p else "—"
        rows.append(
            [
                e.id,
                e.status,
                _task_name(e.spec),
                epochs,
                s.get("test_acc"),
                s.get("grokked"),
                e.data.get("created_at", ""),
            ]
        )
    return rows


EXP_HEADERS = ["id", "status", "task", "epoch", "test_acc", "grokked", "created"]


def print_experiment(e: Experiment) -> None:
    p = e.progress
    latest = p.get("latest") or {}
    fields = [
        ("id", e.id),
        ("status", e.status + ("  (cached: same spec submitted before)" if e.cached else "")),
        ("task", _task_name(e.spec)),
        ("progress", f"{p.get('epoch', '—')}/{p.get('epochs', '—')}" if p else "—"),
    ]
    fields += [(f"latest {k}", v) for k, v in latest.items()]
    fields += [(f"summary {k}", v) for k, v in e.summary.items()]
    if e.error:
        fields.append(("error", e.error))
    width = max(len(k) for k, _ in fields)
    for k, v in fields:
        print(f"{k.ljust(width)}  {cell(v)}")


# -- commands -----------------------------------------------------------------------------------
def cmd_submit(client: Client, a: argparse.Namespace) -> int:
    exp = client.submit(read_document(a.spec_file), force=a.force, priority=a.priority)
    code = wait_for_run(exp, a.timeout, progress=not a.json) if a.wait else RUN_EXIT.get(exp.status, EXIT_OK)
    return answer(a, exp.data, lambda: print_experiment(exp), code)


def cmd_status(client: Client, a: argparse.Namespace) -> int:
    exp = client.get(a.id)
    return answer(a, exp.data, lambda: print_experiment(exp))


def cmd_cancel(client: Client, a: argparse.Namespace) -> int:
    exp = client.cancel(a.id)
    return answer(a, {"id": exp.id, "status": exp.status}, lambda: print(f"{exp.id}: {exp.status}"))


def cmd_timeline(client: Client, a: argparse.Namespace) -> int:
    tl = client.get(a.id).timeline()
    if a.json:
        emit_json(tl.raw)
        return EXIT_OK
    print(format_table(["stage", "start", "end", "criterion"], tl.table()))
    if tl.events:
        print("\nevents: " + ", ".join(f"{k} {cell(v)}" for k, v in tl.events.items()))
    if tl.generalized_in:
        print(f"generalised during the {tl.generalized_in} stage")
    if tl.censored:
        print(f"censored: never generalised; stalled in the {tl.stalled_in or 'last'} stage")
    return EXIT_OK


LIVE_COLUMNS = ("epoch", "train_acc", "test_acc", "train_loss", "test_loss")


def cmd_metrics(client: Client, a: argparse.Namespace) -> int:
    exp = client.get(a.id)
    if a.follow:  # one line per measured row, as the worker stores them, until the run ends
        for row in exp.follow(poll=1.0):
            print("  ".join(f"{k}={cell(row.get(k))}" for k in LIVE_COLUMNS if k in row), flush=True)
        print(f"{exp.id}: {exp.status}")
        return RUN_EXIT.get(exp.status, EXIT_ERROR)
    if a.csv:
        if a.csv == "-":
            sys.stdout.write(exp.metrics_csv_text())
        else:
            print(exp.metrics_csv(a.csv))
        return EXIT_OK
    cols = exp.metric_columns()
    if a.json:
        emit_json({"columns": cols})
        return EXIT_OK
    n = len(next(iter(cols.values()), []))
    names = [c for c in ("epoch", "train_acc", "test_acc", "train_loss", "test_loss") if c in cols]
    step = max(1, n // 10)
    idx = sorted(set(list(range(0, n, step)) + ([n - 1] if n else [])))
    print(format_table(names, [[cols[c][i] for c in names] for i in idx]))
    print(f"{n} rows, {len(cols)} columns (every row: --csv FILE or --json)")
    return EXIT_OK


def cmd_sweep_submit(client: Client, a: argparse.Namespace) -> int:
    doc = read_document(a.sweep_file)
    if "base" not in doc or "grid" not in doc:
        raise BadInput(f'{a.sweep_file} must hold {{"base": SPEC, "grid": {{dotted.path: [values]}}}}')
    options = {k: doc[k] for k in ("name", "tags", "note", "early_stop", "priority") if k in doc}
    sweep = client.submit_sweep(doc["base"], doc["grid"], **options)
    if a.wait:
        sweep.wait(timeout=a.timeout, progress=not a.json)
    return _print_sweep(sweep, a)


def _print_sweep(sweep: Sweep, a: argparse.Namespace) -> int:
    def human() -> None:
        counts = "  ".join(f"{k}={v}" for k, v in sweep.counts.items())
        print(f"sweep {sweep.id}: {sweep.status}, {sweep.n_runs} runs, {sweep.progress:.0%} ended  {counts}".rstrip())

    return answer(a, sweep.data, human)


def cmd_sweep_status(client: Client, a: argparse.Namespace) -> int:
    return _print_sweep(client.get_sweep(a.id), a)


def cmd_sweep_runs(client: Client, a: argparse.Namespace) -> int:
    items = client.get_sweep(a.id).run_items()
    if a.json:
        emit_json(items)
        return EXIT_OK
    rows = [
        {
            "id": it.get("id"),
            "status": it.get("status"),
            **flatten(it.get("spec") or {}),
            **flatten(it.get("summary") or {}, "summary"),
        }
        for it in items
    ]
    varying = [
        k
        for k in (rows[0] if rows else {})
        if k in ("id", "status") or len({json.dumps(r.get(k), default=str) for r in rows}) > 1
    ]
    print(format_table(varying, [[r.get(k) for k in varying] for r in rows]))
    return EXIT_OK


def _fmt(v: float | None, spec: str = ".4g", open_end: str = "—") -> str:
    return open_end if v is None else format(v, spec)


def print_law(law: ScalingLaw, a: argparse.Namespace, plot: str | None = None) -> int:
    """Print a scaling law (or its JSON) and say plainly when it is not a fit: exit 1 then."""
    if plot:
        from .plots import plot_scaling_law

        path = plot_scaling_law(law, plot)
        if not a.json:
            print(f"plot: {path}")
    if a.json:
        emit_json(law.raw)
        return EXIT_OK if law.fitted else EXIT_ERROR
    lo, hi = law.ci95
    print(f"form: {law.form}   status: {law.status}")
    if law.fitted:
        print(f"c = {_fmt(law.c)}   95% CI [{_fmt(lo)}, {_fmt(hi)}] (profile likelihood)   s = {_fmt(law.s, '.3g')}")
    else:
        print(f"no fit: {law.reason}")
        print(f"c is only known to lie in [{_fmt(lo, open_end='0')}, {_fmt(hi, open_end='∞')}]")
    if law.converged != "unknown" or law.convergence_note:
        print(f"budget: {law.converged}" + (f" — {law.convergence_note}" if law.convergence_note else ""))
    rows = [[p.M, p.n_star, p.ci95[0], p.ci95[1], p.free_n_star, p.p_star] for p in law.critical]
    print(format_table(["M", "n_star", "lo", "hi", "own n_star", "p_star"], rows))
    if law.alternatives and isinstance(law.alternatives, list):
        print("\nalternatives (same likelihood):")
        alt_rows = [[x.get("form"), x.get("loglik"), x.get("delta_aic"), x.get("weight")] for x in law.alternatives]
        print(format_table(["form", "loglik", "dAIC", "weight"], alt_rows))
        if law.comparison.get("verdict"):
            print(law.comparison["verdict"])
    gof = law.goodness_of_fit
    if gof.get("p_value") is not None:
        print(f"goodness of fit: {gof.get('test')}: p = {_fmt(gof['p_value'], '.3g')}")
    return EXIT_OK if law.fitted else EXIT_ERROR


def cmd_sweep_law(client: Client, a: argparse.Namespace) -> int:
    law = client.get_sweep(a.id).scaling_law(partial=a.partial)
    return print_law(law, a, a.plot)


def _print_search(search: Search, a: argparse.Namespace) -> int:
    if a.json:
        emit_json(search.data)
        return EXIT_OK
    counts = "  ".join(f"{k}={v}" for k, v in search.counts.items() if v)
    print(
        f"search {search.id}: {search.status}, round {search.round}, {search.n_runs}/{search.max_runs} runs, "
        f"{search.progress:.0%} ended  {counts}".rstrip()
    )
    if search.stop_reason:
        print(f"stopped by: {search.stop_reason}")
    rows = [[o.get("order"), o.get("phase"), o.get("n_star"), *(o.get("ci95") or [None, None])] for o in search.orders]
    if rows:
        print(format_table(["M", "phase", "n_star", "lo", "hi"], rows))
    return EXIT_OK


def cmd_search_start(client: Client, a: argparse.Namespace) -> int:
    doc = read_document(a.search_file)
    if "base" not in doc or "orders" not in doc:
        raise BadInput(f'{a.search_file} must hold {{"base": SPEC, "orders": [M, ...], ...}}')
    options = {k: v for k, v in doc.items() if k not in ("base", "orders")}
    search = client.find_critical_size(doc["base"], doc["orders"], **options)
    if a.wait:
        search.wait(timeout=a.timeout, progress=not a.json)
    return _print_search(search, a)


def cmd_search_status(client: Client, a: argparse.Namespace) -> int:
    return _print_search(client.get_search(a.id), a)


def cmd_search_runs(client: Client, a: argparse.Namespace) -> int:
    items = client.get_search(a.id).run_items()
    if a.json:
        emit_json(items)
        return EXIT_OK
    rows = [
        [
            it.get("id"),
            it.get("round"),
            it.get("status"),
            (it.get("spec") or {}).get("task", {}).get("order"),
            (it.get("spec") or {}).get("data", {}).get("train_size"),
            (it.get("spec") or {}).get("seed"),
            (it.get("summary") or {}).get("grokked"),
            (it.get("summary") or {}).get("test_acc"),
        ]
        for it in items
    ]
    print(format_table(["id", "round", "status", "M", "n", "seed", "grokked", "test_acc"], rows))
    return EXIT_OK


def cmd_search_law(client: Client, a: argparse.Namespace) -> int:
    return print_law(client.get_search(a.id).scaling_law(partial=a.partial), a, a.plot)


def cmd_search_cancel(client: Client, a: argparse.Namespace) -> int:
    return _print_search(client.get_search(a.id).cancel(), a)


# -- one run's results, waiting, sweeps list/cancel -----------------------------------------------
def wait_for_run(exp: Experiment, timeout: float | None, progress: bool) -> int:
    """Wait until `exp` ends; its exit code: 0 succeeded, 3 failed, 4 cancelled, 5 timed out."""
    try:
        exp.wait(timeout=timeout, progress=progress, raise_on_failure=False)
    except WaitTimeout as exc:
        print(f"li2: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    return RUN_EXIT.get(exp.status, EXIT_ERROR)


def cmd_wait(client: Client, a: argparse.Namespace) -> int:
    exp = client.get(a.id)
    code = wait_for_run(exp, a.timeout, progress=not (a.json or a.quiet))
    if a.json:
        emit_json(exp.data)
    elif code == EXIT_TIMEOUT:
        print(f"{exp.id}: still {exp.status}")
    else:
        summary = exp.summary
        acc = f"  test_acc={cell(summary.get('test_acc'))}" if "test_acc" in summary else ""
        print(f"{exp.id}: {exp.status}{acc}" + (f"  error: {exp.error}" if exp.error else ""))
    return code


def cmd_features(client: Client, a: argparse.Namespace) -> int:
    if a.top < 1:
        raise BadInput(f"--top must be at least 1, got {a.top}")
    f = client.features(a.id)
    if a.json:
        emit_json(f.raw)
        return EXIT_OK
    if not f.is_group:
        print(f.raw.get("note") or "no irreps: this task is not a group")
        return EXIT_OK
    print(f"coverage: {cell(f.coverage)}   mean concentration: {cell(f.mean_concentration)}")
    print(f"covered: {', '.join(f.covered) or '—'}")
    print(f"missing: {', '.join(f.missing) or '—'}")
    spectrum = sorted(f.layer_spectrum().items(), key=lambda kv: -kv[1])
    print(format_table(["irrep", "mean power share"], spectrum[: a.top]))
    return EXIT_OK


def cmd_predictions(client: Client, a: argparse.Namespace) -> int:
    p = client.predictions(a.id)
    if a.json:
        emit_json(p.raw)
        return EXIT_OK
    fields = [(k, v) for k, v in vars(p).items() if k != "raw"]
    width = max(len(k) for k, _ in fields)
    for k, v in fields:
        print(f"{k.ljust(width)}  {cell(v)}")
    return EXIT_OK


def cmd_checkpoints(client: Client, a: argparse.Namespace) -> int:
    items = client.checkpoints(a.id)
    if a.json:
        emit_json(items)
        return EXIT_OK
    print(format_table(["epoch", "kind", "size"], [[c.get("epoch"), c.get("kind"), c.get("size")] for c in items]))
    print(f"{len(items)} checkpoint(s)")
    return EXIT_OK


def cmd_plots(client: Client, a: argparse.Namespace) -> int:
    from .plots import plot_experiment

    paths = plot_experiment(client.get(a.id), a.out, spectrum=not a.no_spectrum)
    return answer(a, [str(p) for p in paths], lambda: print("\n".join(str(p) for p in paths)))


def cmd_sweep_list(client: Client, a: argparse.Namespace) -> int:
    sweeps = list(client.list_sweeps())
    if a.json:
        emit_json([s.data for s in sweeps])
        return EXIT_OK
    rows = [[s.id, s.status, s.n_runs, f"{s.progress:.0%}", s.data.get("created_at", "")] for s in sweeps]
    print(format_table(["id", "status", "runs", "ended", "created"], rows))
    print(f"{len(sweeps)} sweep(s)")
    return EXIT_OK


def cmd_sweep_cancel(client: Client, a: argparse.Namespace) -> int:
    return _print_sweep(client.cancel_sweep(a.id), a)


def cmd_queue(client: Client, a: argparse.Namespace) -> int:
    """`li2 queue`: what runs where, and each user's turn with its estimated start."""
    q = client.queue()
    if a.json:
        emit_json(q)
        return EXIT_OK
    print(f"dispatch {q['dispatch']}, {q['slots']} worker slot(s), {q['released']} batch(es) sent, not yet started")
    running = [
        [b["user"], b["worker"], b["device"], b["since"], b["runs"], f"{b['epoch']}/{b['epochs']}"]
        for b in q["running"]
    ]
    print(
        format_table(["user", "worker", "device", "since", "runs", "epoch"], running) if running else "nothing running"
    )
    waiting = [
        [w["position"], w["user"], w["runs"], w["batches"], _fmt(w["estimated_start_s"], ".0f", "unknown")]
        for w in q["waiting"]
    ]
    print(format_table(["turn", "user", "runs", "batches", "starts in (s)"], waiting) if waiting else "nothing waiting")
    return EXIT_OK


def cmd_health(client: Client, a: argparse.Namespace) -> int:
    body = client.health()
    return answer(a, body, lambda: print(f"{client.url}: " + ", ".join(f"{k}={v}" for k, v in body.items())))


# -- parser -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help="service URL (else LI2_URL, config file)")
    common.add_argument(
        "--token",
        default=argparse.SUPPRESS,
        help="API token (else LI2_TOKEN, config file); write --token=T if T starts with -",
    )
    common.add_argument("--profile", default=argparse.SUPPRESS, help="config-file profile (else LI2_PROFILE)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")

    p = argparse.ArgumentParser(prog="li2", parents=[common], description="Li2 Lab command line client.")
    # No p.set_defaults here: the parent's actions are shared with every subparser, and
    # set_defaults would rewrite their SUPPRESS default, so a sub-command would erase `li2 --url X`.
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, func: Callable[[Client, argparse.Namespace], int], help_: str, parent: Any = sub
    ) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, parents=[common], help=help_, description=help_)
        sp.set_defaults(func=func)
        return sp

    s = add("submit", cmd_submit, "submit a spec file (JSON, or YAML with PyYAML)")
    s.add_argument("spec_file", help="path to the spec, or - for stdin")
    s.add_argument("--wait", action="store_true", help="wait until the run ends (progress on stderr)")
    s.add_argument("--force", action="store_true", help="run again even if the same spec was run before")
    s.add_argument("--priority", choices=["low", "normal", "high"], help="order among your own waiting runs")
    s.add_argument("--timeout", type=float, default=3600, help="seconds to wait with --wait (3600)")
    add("status", cmd_status, "show one experiment").add_argument("id")
    add("cancel", cmd_cancel, "cancel an experiment").add_argument("id")
    add("timeline", cmd_timeline, "the stage timeline of a finished experiment").add_argument("id")
    s = add("metrics", cmd_metrics, "metrics of an experiment (every epoch; the rows so far while it trains)")
    s.add_argument("id")
    s.add_argument("--follow", action="store_true", help="print each new row while the run trains, until it ends")
    s.add_argument("--csv", metavar="FILE", help="write every row as CSV to FILE (- for stdout)")
    add("health", cmd_health, "is the service ready?")
    add("queue", cmd_queue, "the shared queue: running batches and each user's turn")

    sw = sub.add_parser("sweep", help="sweeps: submit, status, runs, law").add_subparsers(
        dest="sweep_command", required=True, metavar="SWEEP_COMMAND"
    )
    s = add("submit", cmd_sweep_submit, "submit a sweep file {base, grid}", sw)
    s.add_argument("sweep_file")
    s.add_argument("--wait", action="store_true")
    s.add_argument("--timeout", type=float, default=3600)
    add("status", cmd_sweep_status, "show one sweep", sw).add_argument("id")
    add("runs", cmd_sweep_runs, "the sweep's runs: varying spec fields and summaries", sw).add_argument("id")
    s = add("law", cmd_sweep_law, "the fitted scaling law n* = c·M·ln M; exits 1 when there is no fit", sw)
    s.add_argument("id")
    s.add_argument("--partial", action="store_true", help="fit now on the runs that have ended")
    s.add_argument("--plot", metavar="PNG", help="also save the scaling-law plot here")
    add_sweep_list_cancel(sw, add)
    add_search_commands(sub, add)
    add_organise_commands(sub, add)
    add_result_commands(sub, add)
    attach_help(p)
    return p


def add_result_commands(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    """`li2 wait|features|predictions|checkpoints|plots ID`: one run's end and its results."""
    s = add("wait", cmd_wait, "wait until a run ends; exit 0 succeeded, 3 failed, 4 cancelled, 5 timed out")
    s.add_argument("id")
    s.add_argument("--timeout", type=float, default=3600, help="seconds to wait (3600)")
    s.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    s = add("features", cmd_features, "the learned features: irrep coverage and spectrum of a finished run")
    s.add_argument("id")
    s.add_argument("--top", type=int, default=10, help="irreps shown, by mean power share (10)")
    add("predictions", cmd_predictions, "what the theory predicts for a run's spec (at once)").add_argument("id")
    add("checkpoints", cmd_checkpoints, "a run's stored checkpoints: epoch, kind, size").add_argument("id")
    s = add("plots", cmd_plots, "save a finished run's PNG plots: curves with stages shaded, irrep spectrum")
    s.add_argument("id")
    s.add_argument("-o", "--out", required=True, metavar="DIR", help="folder for the PNGs (created)")
    s.add_argument("--no-spectrum", action="store_true", help="only the curves")


def add_sweep_list_cancel(sw: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    """`li2 sweep list` and `li2 sweep cancel ID`."""
    add("list", cmd_sweep_list, "list your sweeps, newest first", sw)
    add("cancel", cmd_sweep_cancel, "cancel every run of a sweep that has not ended", sw).add_argument("id")


# An example for each command's --help, by its words after `li2` (a test checks every command has one).
EXAMPLES = {
    "submit": "li2 submit spec.json --wait        # exit 0 once the run succeeded",
    "status": "li2 status 3f2a... --json",
    "list": "li2 list --order 23 --grokked --tag paper --sort=-final_test_acc",
    "tag": "li2 tag 3f2a... paper baseline      (--remove to take them off; --sweep for a sweep id)",
    "name": 'li2 name 3f2a... "Z_23 reference"',
    "note": 'li2 note 3f2a... "grokked late; rerun with wd 2e-4"',
    "archive": "li2 archive 3f2a...                 (--undo to bring it back)",
    "delete": "li2 delete 3f2a...                  (an ended run; --sweep for a whole sweep)",
    "download": "li2 download 3f2a... -o run.tar.gz  (.zip for a zip)",
    "cancel": "li2 cancel 3f2a...",
    "timeline": "li2 timeline 3f2a...",
    "metrics": "li2 metrics 3f2a... --csv curves.csv    (or --follow while it trains)",
    "health": "li2 --url http://127.0.0.1:8000 health",
    "queue": "li2 queue        # what runs where, and each user's turn with its estimated start",
    "wait": "li2 wait 3f2a... --timeout 600 && li2 timeline 3f2a...",
    "features": "li2 features 3f2a... --top 5",
    "predictions": "li2 predictions 3f2a... --json",
    "checkpoints": "li2 checkpoints 3f2a...",
    "plots": "li2 plots 3f2a... -o plots/",
    "sweep": "li2 sweep list",
    "sweep submit": 'li2 sweep submit sweep.json --wait    # {"base": SPEC, "grid": {"seed": [1, 2]}}',
    "sweep status": "li2 sweep status 9c1e...",
    "sweep runs": "li2 sweep runs 9c1e...",
    "sweep law": "li2 sweep law 9c1e... --plot law.png",
    "sweep list": "li2 sweep list --json",
    "sweep cancel": "li2 sweep cancel 9c1e...",
    "search": "li2 search start search.json --wait",
    "search start": 'li2 search start search.json --wait   # {"base": SPEC, "orders": [23, 41]}',
    "search status": "li2 search status 5b7d...",
    "search runs": "li2 search runs 5b7d...",
    "search law": "li2 search law 5b7d... --plot law.png",
    "search cancel": "li2 search cancel 5b7d...",
}


def subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Every (words after `li2`, sub-parser) below `parser`, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield " ".join((*path, name)), child
                yield from subcommands(child, (*path, name))


def attach_help(p: argparse.ArgumentParser) -> None:
    """Give each command's --help its example (EXAMPLES) and `li2 --help` the exit-code table."""
    for words, child in subcommands(p):
        if words in EXAMPLES:
            child.epilog = f"example:\n  {EXAMPLES[words]}"
            child.formatter_class = argparse.RawDescriptionHelpFormatter
    codes = "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES.items())
    p.epilog = (
        f"examples:\n  li2 submit spec.json --wait\n  li2 wait ID && li2 plots ID -o plots/\n\nexit codes:\n{codes}"
    )
    p.formatter_class = argparse.RawDescriptionHelpFormatter


def add_search_commands(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    """`li2 search start|status|runs|law|cancel`: the adaptive search for n*(M)."""
    se = sub.add_parser("search", help="searches for n*(M): start, status, runs, law, cancel").add_subparsers(
        dest="search_command", required=True, metavar="SEARCH_COMMAND"
    )
    s = add("start", cmd_search_start, "start a search file {base, orders, seeds, tolerance, max_runs, ...}", se)
    s.add_argument("search_file")
    s.add_argument("--wait", action="store_true", help="wait until the search ends (progress on stderr)")
    s.add_argument("--timeout", type=float, default=6 * 3600, help="seconds to wait with --wait (21600)")
    add("status", cmd_search_status, "show one search: round, runs, each order's state", se).add_argument("id")
    add("runs", cmd_search_runs, "every run of every round", se).add_argument("id")
    s = add("law", cmd_search_law, "the joint law n* = c·M·ln M; exits 1 when there is no fit", se)
    s.add_argument("id")
    s.add_argument("--partial", action="store_true", help="fit now on the runs that have ended")
    s.add_argument("--plot", metavar="PNG", help="also save the scaling-law plot here")
    add("cancel", cmd_search_cancel, "stop a search", se).add_argument("id")


# -- organise: list with filters, labels, archive, delete, download ------------------------------
def _where(pairs: Sequence[str]) -> dict[str, str]:
    """``--where KEY=VALUE`` options as filters (the server validates names and values)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"--where {pair!r}: write KEY=VALUE, e.g. --where final_test_acc_min=0.99")
        out[key.strip()] = value.strip()
    return out


def cmd_list(client: Client, a: argparse.Namespace) -> int:
    filters: dict[str, Any] = _where(a.where)
    for key in ("order", "group", "optimizer", "name"):
        if getattr(a, key) is not None:
            filters[key] = getattr(a, key)
    if a.grokked is not None:
        filters["grokked"] = a.grokked
    if a.archived:
        filters["archived"] = True
    exps = list(client.list(status=a.status, sweep_id=a.sweep, sort=a.sort, tag=a.tag or None, **filters))
    if a.json:
        emit_json([e.data for e in exps])
    else:
        rows = [[*r, e.name, ",".join(e.tags)] for e, r in zip(exps, _experiment_rows(exps), strict=True)]
        print(format_table([*EXP_HEADERS, "name", "tags"], rows))
        print(f"{len(exps)} experiment(s)")
    return EXIT_OK


def _relabel(client: Client, a: argparse.Namespace, **changes: Any) -> int:
    """PATCH an experiment (or with --sweep, a sweep) and print its labels."""
    handle: Experiment | Sweep = client.update_sweep(a.id, **changes) if a.sweep else client.update(a.id, **changes)
    return answer(
        a,
        handle.data,
        lambda: print(
            f"{handle.id}: name={cell(handle.name)} tags={','.join(handle.tags) or '—'} archived={handle.archived}"
        ),
    )


def _current_tags(client: Client, a: argparse.Namespace) -> list[str]:
    return (client.get_sweep(a.id) if a.sweep else client.get(a.id)).tags


def cmd_tag(client: Client, a: argparse.Namespace) -> int:
    tags = _current_tags(client, a)
    if a.remove:
        new = [t for t in tags if t not in a.tags]
    else:
        new = tags + [t for t in dict.fromkeys(a.tags) if t not in tags]
    return _relabel(client, a, tags=new)


def cmd_name(client: Client, a: argparse.Namespace) -> int:
    return _relabel(client, a, name=a.name or None)


def cmd_note(client: Client, a: argparse.Namespace) -> int:
    text = sys.stdin.read() if a.text == "-" else a.text
    return _relabel(client, a, note=text or None)


def cmd_archive(client: Client, a: argparse.Namespace) -> int:
    return _relabel(client, a, archived=not a.undo)


def cmd_delete(client: Client, a: argparse.Namespace) -> int:
    answer = client.delete_sweep(a.id) if a.sweep else client.delete(a.id)
    if a.json:
        emit_json(answer)
    else:
        counts = ", ".join(f"{n} {k}" for k, n in sorted((answer.get("deleted") or {}).items()))
        print(f"{a.id}: deleted ({counts})")
    return EXIT_OK


def cmd_download(client: Client, a: argparse.Namespace) -> int:
    fmt = "zip" if (a.format == "zip" or (a.format is None and str(a.output).endswith(".zip"))) else "tar.gz"
    out = client.download(a.id, a.output or f"{a.id}.{fmt}", format=fmt)
    if a.json:
        emit_json({"id": a.id, "path": str(out), "bytes": out.stat().st_size})
    else:
        print(f"{out} ({out.stat().st_size} bytes)")
    return EXIT_OK


def add_organise_commands(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    """`li2 list` (filters, sort), `li2 tag|name|note|archive|delete` and `li2 download`."""
    s = add(
        "list",
        cmd_list,
        "list your experiments (all pages), filtered and sorted; e.g. li2 list --order 23 --grokked --tag paper "
        "--sort=-final_test_acc --where final_test_acc_min=0.9",
    )
    s.add_argument("--status", choices=["queued", "running", "succeeded", "failed", "cancelled"])
    s.add_argument("--sweep", help="only runs of this sweep id")
    s.add_argument("--order", type=int, help="only runs whose group has M elements")
    s.add_argument("--group", help="only runs of this group kind (cyclic, dihedral, ...)")
    s.add_argument("--optimizer", help="only runs with this optimizer")
    s.add_argument("--name", help="only runs whose name contains this text")
    s.add_argument("--tag", action="append", help="only runs with this tag (repeat to require several)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--grokked", dest="grokked", action="store_true", default=None, help="only runs that grokked")
    g.add_argument("--not-grokked", dest="grokked", action="store_false", help="only runs that did not grok")
    s.add_argument("--archived", action="store_true", help="only the archived runs (hidden otherwise)")
    s.add_argument("--sort", help="a field name, - in front for descending (write --sort=-final_test_acc)")
    s.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other filter of GET /experiments, e.g. lr_max=0.01 or train_fraction_min=0.3 (repeatable)",
    )

    def target(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("id")
        sp.add_argument("--sweep", action="store_true", help="ID is a sweep")
        return sp

    s = target(add("tag", cmd_tag, "add tags to an experiment (or --sweep); e.g. li2 tag ID paper fig-3"))
    s.add_argument("tags", nargs="+", metavar="TAG")
    s.add_argument("--remove", action="store_true", help="remove these tags instead")
    s = target(add("name", cmd_name, "name an experiment (or --sweep); an empty NAME clears it"))
    s.add_argument("name")
    s = target(add("note", cmd_note, "set the note of an experiment (or --sweep); - reads it from stdin"))
    s.add_argument("text")
    s = target(add("archive", cmd_archive, "hide an experiment (or --sweep) from the default list"))
    s.add_argument("--undo", action="store_true", help="unarchive it")
    target(add("delete", cmd_delete, "delete a run that has ended (or --sweep: a sweep and all its runs)"))
    s = add("download", cmd_download, "save a finished run's record, result.json and checkpoints as one archive")
    s.add_argument("id")
    s.add_argument("-o", "--output", help="file to write (default ID.tar.gz); a .zip name makes a zip")
    s.add_argument("--format", choices=["tar.gz", "zip"], help="archive format (default: from -o, else tar.gz)")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name, default in (("url", None), ("token", None), ("profile", None), ("json", False)):
        if not hasattr(args, name):
            setattr(args, name, default)
    try:
        with Client(args.url, args.token, profile=args.profile) as client:
            return args.func(client, args)
    except BadInput as exc:
        print(f"li2: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValidationError as exc:
        print(f"li2: invalid input: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Li2Error as exc:
        print(f"li2: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("li2: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
