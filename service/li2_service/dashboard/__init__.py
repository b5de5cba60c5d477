"""The researchers' dashboard: pages served by the API process, data read from the public API.

    /                 Runs: your experiments (admins: everyone's), filter, sort, the queue
    /runs/<id>        One run: curves with stages (live while it trains), timeline, diagnostics,
                      irrep spectrum, node energies, predictions vs outcome, spec, checkpoints
    /compare?ids=...  Several runs' curves overlaid
    /sweeps           Sweeps;  /sweeps/<id>: progress, a table per M, the scaling law and its verdict
    /signin           Sign in with an API token

Every page is an HTML shell that holds no data: its script (static/js/) signs the user in with
the API token kept in the tab's sessionStorage (never in a URL, never in a cookie) and reads the
same REST endpoints as the SDK and the `li2` command, sending `Authorization: Bearer TOKEN`. So
the dashboard has no access of its own to the database: a user sees exactly what the API lets
them see, and an unknown or foreign run id gets the API's 404, shown as "not found".

Values are put on the page with textContent only (never innerHTML), and every page carries a
strict Content-Security-Policy: scripts, styles and fonts from this origin only, no inline
script, no eval, no connection elsewhere. Charts are Plotly, served from the installed `plotly`
package by li2_service.assets.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request

bp = Blueprint(
    "dashboard",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets/dashboard",
)

# What a dashboard page may load and do. 'self' only; no inline script and no eval anywhere.
# Plotly injects <style> elements and style attributes of its own (measured: with style-src 'self'
# alone Chromium reports style-src-elem and style-src-attr violations and the charts lose their
# styling), hence 'unsafe-inline' for styles only; no script can ride on a style.
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def page(template: str, **context) -> Response:
    """Render one page shell with the security headers."""
    response = Response(render_template(f"dashboard/{template}", **context), mimetype="text/html")
    response.headers.update(SECURITY_HEADERS)
    return response


@bp.get("/")
def runs():
    return page("runs.html", page_name="runs", title="Runs", charts=False)


@bp.get("/runs/<run_id>")
def run(run_id: str):
    # The id only travels to the script (escaped by Jinja); the API decides whether it exists for you.
    return page("run.html", page_name="run", title="Run", charts=True, item_id=run_id[:64])


@bp.get("/compare")
def compare():
    return page("compare.html", page_name="compare", title="Compare", charts=True)


@bp.get("/sweeps")
def sweeps():
    return page("sweeps.html", page_name="sweeps", title="Sweeps", charts=False)


@bp.get("/sweeps/<sweep_id>")
def sweep(sweep_id: str):
    return page("sweep.html", page_name="sweep", title="Sweep", charts=True, item_id=sweep_id[:64])


@bp.route("/signin", methods=["GET", "POST"])
def signin():
    """The sign-in form. Its script keeps the token in sessionStorage; a POST (a browser without
    script) is never read, so a token cannot end up in a log or a URL."""
    status = 200 if request.method == "GET" else 400
    response = page("signin.html", page_name="signin", title="Sign in", charts=False)
    response.status_code = status
    return response
