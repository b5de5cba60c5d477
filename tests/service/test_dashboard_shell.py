"""The dashboard's pages and the vendored browser assets at the HTTP level (the browser tests in
tests/browser drive the same pages in Chromium): public shells with a strict CSP, assets read from
the installed packages, API docs that reference nothing outside this service."""

from __future__ import annotations

import re

import pytest

PAGES = ("/", "/runs/0123", "/compare", "/sweeps", "/sweeps/0123", "/signin")


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_public_shells_with_a_strict_csp(sqlite_svc, path):
    answer = sqlite_svc.client.get(path)  # no token: the page holds no data, its script asks the API
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    csp = dict(d.strip().split(" ", 1) for d in answer.headers["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'" and csp["connect-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'" and answer.headers["X-Content-Type-Options"] == "nosniff"
    html = answer.get_data(as_text=True)
    assert not re.search(r"<script>|<script [^>]*>[^<]", html), "no inline script"
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "nothing from another host"


def test_an_id_in_the_path_reaches_the_page_escaped(sqlite_svc):
    html = sqlite_svc.client.get('/runs/x"><img src=x onerror=alert(1)>').get_data(as_text=True)
    assert "<img src=x" not in html and 'data-id="x&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"' in html


def test_a_posted_sign_in_form_is_never_read(sqlite_svc):
    answer = sqlite_svc.client.post("/signin", data={"token": "secret-token-value"})
    assert answer.status_code == 400 and "secret-token-value" not in answer.get_data(as_text=True)


@pytest.mark.parametrize(
    ("name", "starts"),
    [
        ("plotly.min.js", b"/**\n* plotly.js"),
        ("swagger-ui/swagger-ui-bundle.js", b"/*! For license information please see swagger-ui-bundle.js"),
        ("swagger-ui/swagger-ui.css", b".swagger-ui"),
        ("redoc/redoc.standalone.js", b"/*! For license information please see redoc.standalone.js"),
    ],
)
def test_vendor_assets_come_from_the_installed_packages(sqlite_svc, name, starts):
    answer = sqlite_svc.client.get(f"/assets/vendor/{name}")
    assert answer.status_code == 200 and answer.data.startswith(starts)
    assert answer.headers["Cache-Control"] == "public, max-age=86400" and answer.headers["ETag"]


@pytest.mark.parametrize("name", ["../../etc/passwd", "plotly.js", "swagger-ui/index.html", "%2e%2e/app.py"])
def test_only_the_listed_asset_files_are_served(sqlite_svc, name):
    assert sqlite_svc.client.get(f"/assets/vendor/{name}").status_code == 404


@pytest.mark.parametrize("path", ["/api/v1/docs", "/api/v1/redoc"])
def test_the_api_docs_load_their_scripts_from_this_service(sqlite_svc, path):
    html = sqlite_svc.client.get(path).get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/assets/vendor/") for s in sources), sources
    for source in sources:
        assert sqlite_svc.client.get(source).status_code == 200, source
