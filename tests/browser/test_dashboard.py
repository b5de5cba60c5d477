"""The dashboard in a real browser against the real service: sign-in, live curves, a finished run's
stages, timeline and spectrum, compare, a sweep's law, isolation between users, escaping.

What each page shows is checked against what the public API answers for the same run, so a page
that drew made-up or stale values would fail here.
"""

from __future__ import annotations

import math
import re

import pytest

pytestmark = pytest.mark.timeout(900)


def points(page, chart: str) -> int:
    """How many points the chart draws (all traces), read from Plotly's own data on the element."""
    return page.evaluate(
        "(id) => (document.getElementById(id).data || []).reduce((n, t) => n + (t.x ? t.x.length : 0), 0)", chart
    )


def table_rows(page, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"{selector} tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))"
    )


def fmt(v: float) -> str:
    """The dashboard's number format (common.js fmt) for a float with 4 significant digits."""
    if isinstance(v, int) or float(v).is_integer():
        return str(int(v))
    a = abs(v)
    if a < 1e-3 or a >= 1e5:
        return f"{v:.2e}".replace("e-0", "e-").replace("e+0", "e+")
    return repr(float(f"{v:.4g}"))


def scalars(values: dict):
    """(key, number) pairs of a boundary's values, nested groups (at_start, at_end) included."""
    for key, value in values.items():
        if isinstance(value, dict):
            yield from scalars(value)
        elif value is not None:
            yield key, value


# -- sign-in ----------------------------------------------------------------------------------------


def test_sign_in_rejects_a_wrong_token_and_keeps_the_right_one_out_of_urls(
    guarded_page, service, alice, sign_in, screenshot, shots
):
    page = guarded_page
    page.goto(f"{service.url}/")
    page.wait_for_url(re.compile(r".*/signin\?next=.*"))  # a signed-out visitor is sent to sign in
    page.fill("#token", "not-a-token")
    page.click("button[type=submit]")
    page.wait_for_selector("#signin-error:not([hidden])")
    assert "not accepted" in page.inner_text("#signin-error")
    screenshot(page, shots, "signin")
    sign_in(page, service.url, alice.token)
    page.wait_for_selector("#runs thead")
    assert alice.token not in page.url
    assert page.evaluate("sessionStorage.getItem('li2.token')") == alice.token
    assert page.evaluate("document.cookie") == ""


# -- live -------------------------------------------------------------------------------------------


def test_a_running_runs_curve_grows_without_a_reload_then_cancel_stops_it(
    guarded_page, service, alice, sign_in, spec, screenshot, shots
):
    """Submit through the API; the run page draws more points as the worker measures them."""
    run_id = alice.submit(spec(epochs=30000, eval_every=20, seed=11))
    try:
        watch_it_grow_and_cancel(guarded_page, service, alice, run_id, sign_in, screenshot, shots)
    finally:  # never leave the long run to block the worker for the other tests
        alice.call("POST", f"/experiments/{run_id}/cancel")


def watch_it_grow_and_cancel(page, service, alice, run_id, sign_in, screenshot, shots):
    sign_in(page, service.url, alice.token)
    page.goto(f"{service.url}/runs/{run_id}")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    page.wait_for_function("() => document.body.dataset.state === 'live'")
    first_points = "() => (document.getElementById('chart-acc').data || [{}])[0].x?.length > 0"
    page.wait_for_function(first_points, timeout=300_000)
    counts = [points(page, "chart-acc")]
    for _ in range(2):  # two more live updates, each adding points
        page.wait_for_function(
            "(n) => (document.getElementById('chart-acc').data || []).reduce((s, t) => s + t.x.length, 0) > n",
            arg=counts[-1],
            timeout=60_000,
        )
        counts.append(points(page, "chart-acc"))
    assert counts == sorted(counts) and counts[-1] > counts[0]
    assert page.evaluate("window.__sameDocument") is True
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert page.is_visible("#live")
    screenshot(page, shots, "run-live")
    # The drawn points are the API's rows of this run (train + test accuracy per measured epoch).
    drawn_epochs = page.evaluate("document.getElementById('chart-acc').data[0].x")
    served = alice.get(f"/experiments/{run_id}/metrics")["columns"]["epoch"]
    assert drawn_epochs == served[: len(drawn_epochs)]
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#cancel")
    page.wait_for_function("() => document.body.dataset.state === 'finished'", timeout=120_000)
    assert page.inner_text("#run-status") == "cancelled"
    assert alice.get(f"/experiments/{run_id}")["status"] == "cancelled"


# -- a finished run ---------------------------------------------------------------------------------


def test_a_finished_run_shows_its_stages_timeline_and_spectrum_with_its_real_values(
    guarded_page, service, alice, finished_run, sign_in, screenshot, shots
):
    run_id = finished_run["id"]
    timeline = alice.get(f"/experiments/{run_id}/timeline")
    features = alice.get(f"/experiments/{run_id}/features")
    metrics = alice.get(f"/experiments/{run_id}/metrics")["columns"]
    page = guarded_page
    sign_in(page, service.url, alice.token, then=f"/runs/{run_id}")
    page.wait_for_function("() => document.body.dataset.state === 'finished'")
    page.wait_for_function("() => document.getElementById('chart-spectrum').data !== undefined")

    # Curves: every measured epoch, the API's values.
    acc = page.evaluate("document.getElementById('chart-acc').data.map(t => ({name: t.name, x: t.x, y: t.y}))")
    assert [t["name"] for t in acc] == ["train_acc", "test_acc"]
    assert acc[1]["x"] == metrics["epoch"] and acc[1]["y"] == metrics["test_acc"]
    # Stages shaded: one rectangle per stage, at the stage's epochs; event lines at the events.
    shapes = page.evaluate("document.getElementById('chart-acc').layout.shapes")
    rects = [(s["x0"], s["x1"]) for s in shapes if s["type"] == "rect"]
    assert rects == [(s["start_epoch"], max(s["end_epoch"], s["start_epoch"] + 1e-9)) for s in timeline["stages"]]
    lines = sorted(s["x0"] for s in shapes if s["type"] == "line")
    events = timeline["events"]
    assert lines == sorted(events[k] for k in ("memorized", "generalized") if events.get(k) is not None)
    # The timeline table: one row per stage with its epochs, criterion and the values at the boundary.
    rows = table_rows(page, "#timeline")
    assert [r[:4] for r in rows] == [
        [s["name"], str(s["start_epoch"]), str(s["end_epoch"]), s["criterion"] or "—"] for s in timeline["stages"]
    ]
    for row, stage in zip(rows, timeline["stages"], strict=True):
        for key, value in scalars(stage.get("values") or {}):
            assert f"{key} = {fmt(value)}" in row[4], (key, value, row[4])
    # The spectrum: (irreps without the trivial one) × (nodes), rows of shares that sum to 1.
    z = page.evaluate("document.getElementById('chart-spectrum').data[0].z")
    labels = features["spectrum"]["labels"]
    assert len(z) == len([lab for lab in labels if lab != "trivial"])
    assert len(z[0]) == len(features["spectrum"]["nodes"])
    for node in range(len(z[0])):
        assert math.isclose(sum(row[node] for row in z), 1.0, rel_tol=1e-9)
    summary = page.inner_text("#spectrum-summary")
    assert f"weighted concentration {fmt(round(features['mean_concentration'], 3))}" in summary.replace("0.", "0.")
    assert f"coverage {len(features['covered'])}/{len(features['covered']) + len(features['missing'])}" in summary
    # Predictions next to what happened; spec as JSON; checkpoints listed.
    predictions = page.inner_text("#predictions")
    pred = alice.get(f"/experiments/{run_id}/predictions")
    assert fmt(pred["critical_train_size"]) in predictions and f"training size n = {pred['train_size']}" in predictions
    assert ("generalized at epoch" in predictions) == bool(finished_run["summary"]["grokked"])
    assert page.evaluate("JSON.parse(document.getElementById('spec').textContent)") == finished_run["spec"]
    checkpoints = alice.get(f"/experiments/{run_id}/checkpoints")
    assert [r[0] for r in table_rows(page, "#checkpoints")] == [str(c["epoch"]) for c in checkpoints]
    # The metrics CSV downloads with the token (never in the URL) and holds every row.
    with page.expect_download() as download:
        page.click("#metrics-csv")
    text = open(download.value.path(), encoding="utf-8").read().splitlines()
    assert text[0].startswith("epoch,train_acc,test_acc") and len(text) == 1 + len(metrics["epoch"])
    assert page.evaluate("window.__csp") == []  # the page, Plotly included, lives within its CSP
    screenshot(page, shots, "dashboard-run", publish=True)
    page.set_viewport_size({"width": 2400, "height": 1300})  # a wide monitor: panels side by side
    page.wait_for_timeout(300)
    screenshot(page, shots, "run-wide")


def test_the_runs_page_lists_filters_and_sorts_with_the_runs_values(
    guarded_page, service, alice, finished_run, other_wd_run, sign_in, screenshot, shots
):
    page = guarded_page
    sign_in(page, service.url, alice.token)
    page.wait_for_selector(f"#runs a[href='/runs/{finished_run['id']}']")
    row = next(r for r in table_rows(page, "#runs") if r[1] == finished_run["id"][:8])
    s = finished_run["summary"]
    assert row[2:][:1] == ["succeeded"] and row[4] == "cyclic 11" and row[5] == "11" and row[6] == "90.0 %"
    assert row[7:11] == ["64", "adam", "0.05", "0.001"]
    assert row[13:16] == [str(s["epoch_memorized"]), str(s["epoch_generalized"]), "yes" if s["grokked"] else "no"]
    page.fill("#filter", "0.01")  # only the run with weight decay 0.01
    ids = [r[1] for r in table_rows(page, "#runs")]
    assert other_wd_run["id"][:8] in ids and finished_run["id"][:8] not in ids
    page.fill("#filter", "")
    page.click("#runs th[data-key=wd]")  # sort by weight decay, ascending
    wds = [r[10] for r in table_rows(page, "#runs") if r[10] != "—"]
    assert [float(w) for w in wds] == sorted(float(w) for w in wds)
    # the queue panel reads GET /queue (fair-share dispatch, the embedded worker's slot)
    page.wait_for_function("document.querySelector('#queue-source').textContent.includes('fair dispatch')")
    assert "1 worker slot(s)" in page.text_content("#queue-source")
    screenshot(page, shots, "runs")


def test_compare_overlays_two_runs_named_by_what_differs(
    guarded_page, service, alice, finished_run, other_wd_run, sign_in, screenshot, shots
):
    page = guarded_page
    sign_in(page, service.url, alice.token)
    for run in (finished_run, other_wd_run):
        page.check(f"#runs input[value='{run['id']}']")
    page.click("#compare-selected")
    page.wait_for_url(re.compile(r".*/compare\?ids=.*"))
    page.wait_for_function("() => (document.getElementById('chart-acc').data || []).length === 4")
    traces = page.evaluate("document.getElementById('chart-acc').data.map(t => ({name: t.name, n: t.x.length}))")
    names = [t["name"] for t in traces]
    assert names == [f"weight_decay={wd} {curve}" for wd in ("0.001", "0.01") for curve in ("test", "train")]
    for run, trace in zip((finished_run, other_wd_run), traces[::2], strict=True):
        assert trace["n"] == len(alice.get(f"/experiments/{run['id']}/metrics")["columns"]["epoch"])
    screenshot(page, shots, "compare")


def test_a_sweep_page_shows_its_law_band_reference_and_verdict(
    guarded_page, service, alice, finished_sweep, sign_in, screenshot, shots
):
    sweep_id = finished_sweep["id"]
    law = alice.get(f"/sweeps/{sweep_id}/scaling-law")
    page = guarded_page
    sign_in(page, service.url, alice.token, then=f"/sweeps/{sweep_id}")
    page.wait_for_function("() => document.body.dataset.state === 'finished'", timeout=60_000)
    verdict = page.inner_text("#verdict")
    traces = page.evaluate("document.getElementById('chart-law').data.map(t => ({name: t.name, x: t.x, y: t.y}))")
    by_name = {t["name"]: t for t in traces}
    if law["c"] is not None:
        c3 = float(f"{law['c']:.3g}")
        assert f"c = {fmt(c3)}" in verdict
        fit = next(t for n, t in by_name.items() if n.startswith("fit c·M·ln M"))
        for M, n in zip(fit["x"], fit["y"], strict=True):
            assert math.isclose(n, law["c"] * M * math.log(M), rel_tol=1e-9)
    else:
        assert "No constant fitted" in verdict
    reference = next(t for n, t in by_name.items() if n.startswith("theory, c = 2.748"))
    assert math.isclose(reference["y"][0], 2.7482 * reference["x"][0] * math.log(reference["x"][0]), rel_tol=1e-9)
    crit = {c["order"]: c for c in law["critical"]}
    rows = table_rows(page, "#law-table")
    assert [r[0] for r in rows] == [str(m) for m in crit]
    # each order's own runs and successes, from the law's per-order (free) estimate
    assert [r[-2:] for r in rows] == [[str(c["free"]["n_runs"]), str(c["free"]["successes"])] for c in crit.values()]
    assert page.eval_on_selector_all("#per-m table", "ts => ts.map(t => t.dataset.order)") == ["11", "13"]
    assert sum(len(table_rows(page, f"#per-m table[data-order='{m}']")) for m in (11, 13)) == 8
    screenshot(page, shots, "dashboard-sweep", publish=True)


# -- isolation and bad input -----------------------------------------------------------------------


def test_another_user_sees_not_found_exactly_as_for_an_unknown_id(
    guarded_page, service, alice, bob, finished_run, sign_in, screenshot, shots
):
    page = guarded_page
    sign_in(page, service.url, bob.token)
    page.wait_for_selector("#runs thead")
    assert finished_run["id"][:8] not in page.inner_text("#runs")
    notices = []
    for run_id in (finished_run["id"], "0" * 32):  # alice's run, and one that does not exist
        page.goto(f"{service.url}/runs/{run_id}")
        page.wait_for_selector("#notice:not([hidden])")
        notices.append(page.inner_text("#notice"))
        assert page.is_hidden("#run-body")
    assert notices[0] == notices[1] and notices[0].startswith("Not found")
    screenshot(page, shots, "not-found")


def test_an_admin_sees_everyones_runs(guarded_page, service, root, finished_run, sign_in):
    page = guarded_page
    sign_in(page, service.url, root.token)
    page.wait_for_selector(f"#runs a[href='/runs/{finished_run['id']}']")  # alice's run, in the admin's list
    page.click(f"#runs a[href='/runs/{finished_run['id']}']")
    page.wait_for_function("() => document.body.dataset.state === 'finished'")
    assert page.is_hidden("#notice") and page.inner_text("#run-status") == "succeeded"


def test_a_wrong_or_revoked_token_sends_the_user_to_sign_in(guarded_page, service, alice, finished_run, sign_in):
    page = guarded_page
    sign_in(page, service.url, alice.token)
    page.evaluate("sessionStorage.setItem('li2.token', 'revoked-token')")
    # The page's script may send the user to sign-in before its own load event, which aborts a
    # goto that waits for "load" (seen: net::ERR_ABORTED); wait only for the navigation to start.
    page.goto(f"{service.url}/runs/{finished_run['id']}", wait_until="commit")
    page.wait_for_url(re.compile(r".*/signin\?next=.*why=expired"))
    assert "not accepted" in page.inner_text("#notice")
    assert page.evaluate("sessionStorage.getItem('li2.token')") is None


HOSTILE = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


def test_markup_in_stored_values_stays_text_and_never_runs(
    guarded_page, service, alice, finished_run, sign_in, screenshot, shots
):
    """A spec value, an error text and a sweep's grid holding markup (written into the store as a
    buggy or future writer could) are shown as text on every page, and nothing of them executes."""
    import sqlalchemy as sa

    from li2_store import models
    from li2_store.db import utcnow

    engine = sa.create_engine(service.database_url)
    hostile_spec = {**finished_run["spec"], "task": {"group": "expression", "expression": HOSTILE, "modulus": 7}}
    exp = models.Experiment
    with engine.begin() as conn:
        user_id = conn.execute(sa.select(exp.user_id).where(exp.id == finished_run["id"])).scalar_one()
        conn.execute(
            sa.insert(models.Sweep).values(
                id="f" * 32,
                user_id=user_id,
                base_json=finished_run["spec"],
                grid_json={HOSTILE: [1, 2]},
                status="failed",
                n_runs=1,
                created_at=utcnow(),
            )
        )
        conn.execute(
            sa.insert(exp).values(
                id="e" * 32,
                user_id=user_id,
                sweep_id="f" * 32,
                spec_json=hostile_spec,
                spec_hash="x" * 64,
                batch_key="x",
                status="failed",
                error=HOSTILE,
                epochs=150,
                created_at=utcnow(),
            )
        )
    engine.dispose()
    page = guarded_page
    sign_in(page, service.url, alice.token)
    shown_as_text = "(sel) => document.querySelector(sel).textContent.includes('<script>')"
    pages = {"/": "#runs", f"/runs/{'e' * 32}": "#run-task", "/sweeps": "#sweeps", f"/sweeps/{'f' * 32}": "#sweep-grid"}
    for path, where in pages.items():
        page.goto(service.url + path)
        page.wait_for_function(shown_as_text, arg=where)
        assert page.evaluate("window.__xss") is None
        assert page.eval_on_selector_all("main script, main img", "els => els.length") == 0
    page.goto(f"{service.url}/runs/{'e' * 32}")
    page.wait_for_selector("#run-error:not([hidden])")
    assert HOSTILE in page.inner_text("#run-error")
    assert page.evaluate("window.__xss") is None
    screenshot(page, shots, "escaped")


def test_dashboard_pages_carry_a_strict_content_security_policy(guarded_page, service, alice, sign_in):
    page = guarded_page
    answer = page.goto(f"{service.url}/signin")
    csp = answer.headers["content-security-policy"]
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src")).split()[1:]
    assert script_src == ["'self'"] and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    # An inline script slipped into the page is refused by the browser.
    sign_in(page, service.url, alice.token)
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1';"
        " document.body.append(s); }"
    )
    page.wait_for_function("() => window.__csp.length > 0")
    assert page.evaluate("window.__inline") is None
    assert any(v.startswith("script-src") for v in page.evaluate("window.__csp"))


# -- API docs ---------------------------------------------------------------------------------------


def test_swagger_ui_and_redoc_load_offline_and_list_the_operations(guarded_page, service, screenshot, shots):
    page = guarded_page
    page.goto(f"{service.url}/api/v1/docs")
    page.wait_for_selector(".opblock-summary-path")
    paths = set(page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.textContent.trim())"))
    assert {"/api/v1/experiments", "/api/v1/experiments/{exp_id}/metrics", "/api/v1/sweeps"} <= {
        p.replace("\u200b", "") for p in paths
    }
    screenshot(page, shots, "swagger-ui", full_page=False)
    answer = page.goto(f"{service.url}/api/v1/redoc")
    # ReDoc's sidebar asks a CDN for its logo; the docs' CSP keeps that request in the browser.
    assert "img-src 'self' data:" in answer.headers["content-security-policy"]
    operations = ("Submit one experiment", "List your experiments", "Training curves as columns")
    page.wait_for_function("(ops) => ops.every((op) => document.body.innerText.includes(op))", arg=list(operations))
    screenshot(page, shots, "redoc", full_page=False)
