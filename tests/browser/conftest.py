"""Browser tests of the dashboard: headless Chromium (Debian's `chromium`, driven by Playwright from
PyPI through its executable path) against a real service (``li2lab serve`` in embedded mode, with
its real worker), as a researcher would use it.

Every page a test opens goes through `guarded_page`: any request to a host other than 127.0.0.1
is aborted and fails the test (no CDN, nothing leaves the machine), a script error on the page
fails it, and Content-Security-Policy violations are collected. Screenshots go to the test's own
output folder (`shots`); with LI2_DASHBOARD_SCREENSHOTS=DIR the README's two are also copied there:

    LI2_DASHBOARD_SCREENSHOTS=docs/img .venv/bin/python -m pytest tests/browser   # docs/img/dashboard-*.png
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "client"))  # `import embedded_service`

from embedded_service import LiveService, running_service

CHROMIUM = os.environ.get("LI2_TEST_CHROMIUM", "/usr/bin/chromium")
# The flags this machine's closed network needs (no background fetches, no first-run, no QUIC).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ALLOWED_HOST = "127.0.0.1"
LAPTOP = {"width": 1366, "height": 900}


def spec(epochs: int = 150, weight_decay: float = 1e-3, seed: int = 1, eval_every: int | None = None) -> dict:
    """A tiny run: Z_11, K=64, Adam at a brisk rate; groks in ~50 epochs at fraction 0.9 (seconds of
    CPU). Built with the SDK's Spec builder, as a user would."""
    from li2_client import Spec

    built = (
        Spec.cyclic(11)
        .train_fraction(0.9)
        .model(hidden=64, activation="sqr")
        .adam(lr=0.05, weight_decay=weight_decay)
        .epochs(epochs)
        .seed(seed)
    )
    return (built.eval_every(eval_every) if eval_every else built).to_dict()


@dataclass
class Api:
    """The public REST API as one user (what the SDK and other tools call)."""

    url: str
    token: str

    def call(self, method: str, path: str, **kw) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return requests.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=60, **kw)

    def get(self, path: str, **kw):
        answer = self.call("GET", path, **kw)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
        return answer.json()

    def submit(self, body: dict) -> str:
        answer = self.call("POST", "/experiments", json={"spec": body, "force": True})
        assert answer.status_code in (200, 202), answer.text
        return answer.json()["id"]

    def wait(self, path: str, timeout: float = 600) -> dict:
        """Poll GET path until its status is terminal; return the last answer."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            body = self.get(path)
            if body["status"] in ("succeeded", "failed", "cancelled"):
                return body
            assert time.monotonic() < deadline, f"{path} still {body['status']} after {timeout} s"
            time.sleep(0.5)


@pytest.fixture(scope="session")
def service(tmp_path_factory) -> LiveService:
    with running_service(tmp_path_factory.mktemp("li2-dashboard"), LI2_MAX_ACTIVE_PER_USER=50) as svc:
        yield svc


@pytest.fixture(scope="session")
def alice(service) -> Api:
    return Api(service.url, service.create_user("alice"))


@pytest.fixture(scope="session")
def bob(service) -> Api:
    return Api(service.url, service.create_user("bob"))


@pytest.fixture(scope="session")
def root(service) -> Api:
    """An admin."""
    return Api(service.url, service.create_user("root", admin=True))


@pytest.fixture(scope="session")
def finished_run(alice) -> dict:
    """One tiny run of alice's, trained to the end."""
    return alice.wait(f"/experiments/{alice.submit(spec())}")


@pytest.fixture(scope="session")
def other_wd_run(alice) -> dict:
    """The same spec at a 10× weight decay (for Compare)."""
    return alice.wait(f"/experiments/{alice.submit(spec(weight_decay=1e-2))}")


SWEEP_GRID = {"task.order": [11, 13], "data.train_fraction": [0.3, 0.9], "seed": [1, 2]}


@pytest.fixture(scope="session")
def finished_sweep(alice) -> dict:
    """2 orders × 2 train sizes × 2 seeds: 0.3 of the pairs is below c·M·ln M, 0.9 above."""
    base = spec(epochs=100, eval_every=5)
    answer = alice.call("POST", "/sweeps", json={"base": base, "grid": SWEEP_GRID})
    assert answer.status_code == 202, answer.text
    return alice.wait(f"/sweeps/{answer.json()['id']}", timeout=900)


# -- the browser ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)"
        if os.environ.get("LI2_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# Collects Content-Security-Policy violations in the page (added before any page script runs).
# Note for test authors: the pages' CSP forbids eval, so wait_for_function takes arrow functions
# ("() => ...") only; a bare expression string would be eval'ed in the page and refused.
CSP_WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
"""


@dataclass
class Guard:
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def shots(tmp_path) -> Path:
    """Where this test's screenshots go (its own output folder)."""
    out = tmp_path / "screenshots"
    out.mkdir()
    return out


def screenshot(page, shots: Path, name: str, full_page: bool = True, publish: bool = False) -> Path:
    """Save a PNG of the page under `shots`; a `publish`ed one (the README's) also goes to
    LI2_DASHBOARD_SCREENSHOTS when that is set (LI2_DASHBOARD_SCREENSHOTS=docs/img refreshes them)."""
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    extra = os.environ.get("LI2_DASHBOARD_SCREENSHOTS")
    if extra and publish:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)
    return path


@pytest.fixture
def guarded_page(browser):
    """A fresh browser context (empty sessionStorage) whose requests may only go to 127.0.0.1."""
    guard = Guard()
    context = browser.new_context(viewport=LAPTOP)

    def route(route):
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith(("data:", "blob:")) or host == ALLOWED_HOST:
            route.continue_()
        else:
            guard.foreign.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    context.add_init_script(CSP_WATCH)
    page = context.new_page()
    page.on("pageerror", lambda exc: guard.errors.append(str(exc)))
    page.set_default_timeout(30_000)
    page.guard = guard
    yield page
    context.close()
    assert not guard.foreign, f"requests left 127.0.0.1: {guard.foreign}"
    assert not guard.errors, f"script errors on the page: {guard.errors}"


def sign_in(page, url: str, token: str, then: str = "/") -> None:
    """Sign in through the sign-in form and land on `then`."""
    page.goto(f"{url}/signin?next={then}")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}{then}")


@pytest.fixture(name="sign_in")
def sign_in_fixture():
    return sign_in


@pytest.fixture(name="screenshot")
def screenshot_fixture():
    return screenshot


@pytest.fixture(name="spec")
def spec_fixture():
    return spec
