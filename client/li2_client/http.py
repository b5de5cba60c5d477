"""HTTP transport: one ``requests.Session``, timeouts, and a retry policy that is safe.

Retry rules (``Transport.request``):

* connection errors and 5xx answers are retried with exponential backoff and jitter, but only for
  *idempotent* requests: GET/HEAD/PUT/DELETE/OPTIONS, or a POST that carries an ``Idempotency-Key``
  header (the server answers a repeated key with the first answer, so a repeat cannot create a
  second run). A POST without a key is never repeated: a lost answer must not become two runs.
* 429 answers are retried (the server refused the request, so repeating is always safe) after the
  server's ``Retry-After``, but only when that wait is at most ``max_retry_wait`` seconds; a longer
  wait (typically "your quota is full") raises ``QuotaExceeded`` at once with ``retry_after`` set,
  so scripts decide themselves instead of hanging.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import requests

from . import __version__
from .errors import AuthError, Li2Error, QuotaExceeded, ServerError, error_from_response, parse_retry_after

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({500, 502, 503, 504})


def backoff_delay(attempt: int, base: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): base·2^attempt, capped, 50–100 % jitter."""
    return min(cap, base * (2**attempt)) * (0.5 + 0.5 * rng())


def is_idempotent(method: str, headers: dict[str, str] | None) -> bool:
    """Whether repeating this request cannot change the outcome (see the module docstring)."""
    if method.upper() in IDEMPOTENT_METHODS:
        return True
    return any(k.lower() == "idempotency-key" for k in (headers or {}))


class Transport:
    """Sends requests to ``{url}/api/v1`` (or absolute server paths like ``/readyz``) with retries."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        timeout: float = 30,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_wait: float = 10.0,
        token_source: str = "argument",
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.url = url.rstrip("/")
        self.api = self.url + "/api/v1"
        self.token = token
        self.token_source = token_source
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_wait = max_retry_wait
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = f"li2-client/{__version__}"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self._sleep = sleep
        self.closed = False

    def close(self) -> None:
        """Close the HTTP session (its pooled connections); later requests raise ``Li2Error``."""
        self.closed = True
        self.session.close()

    def _full_url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        if path in ("/healthz", "/readyz"):
            return self.url + path
        return self.api + "/" + path.lstrip("/")

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """Send one request, retrying as the module docstring says; raise a typed error on non-2xx."""
        if self.closed:
            raise Li2Error(f"this client for {self.url} is closed; make a new Client")
        method = method.upper()
        idempotent = is_idempotent(method, headers)
        url = self._full_url(path)
        attempt = 0
        while True:
            try:
                resp = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    headers=headers,
                    timeout=(min(self.timeout, 10.0), self.timeout),
                    stream=stream,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if idempotent and attempt < self.retries:
                    self._sleep(backoff_delay(attempt, self.backoff, self.max_backoff))
                    attempt += 1
                    continue
                raise ServerError(
                    f"cannot reach the Li2 Lab service at {self.url}: {exc.__class__.__name__}: {exc}"
                    + ("" if idempotent else " (not retried: a POST without an Idempotency-Key)")
                ) from exc
            if resp.status_code < 400:
                return resp
            wait = self._retry_wait(resp, idempotent, attempt)
            if wait is None:
                raise self._error(resp)
            resp.close()
            self._sleep(wait)
            attempt += 1

    def _retry_wait(self, resp: requests.Response, idempotent: bool, attempt: int) -> float | None:
        """Seconds to wait before retrying this answer, or None when it must not be retried."""
        if attempt >= self.retries:
            return None
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        if resp.status_code == 429:
            if retry_after is None:
                return backoff_delay(attempt, self.backoff, self.max_backoff)
            return retry_after if retry_after <= self.max_retry_wait else None
        if resp.status_code in RETRY_STATUSES and idempotent:
            if retry_after is not None:
                return retry_after if retry_after <= self.max_retry_wait else None
            return backoff_delay(attempt, self.backoff, self.max_backoff)
        return None

    def _error(self, resp: requests.Response) -> Li2Error:
        err = error_from_response(resp)
        if isinstance(err, AuthError) and resp.status_code == 401:
            hint = (
                "no token configured: pass token=..., set LI2_TOKEN, or add it to ~/.config/li2lab/config.toml"
                if not self.token
                else f"the token from {self.token_source} was rejected"
            )
            err.message = f"{err.message} — {hint}"
        if isinstance(err, QuotaExceeded) and err.retry_after is not None:
            err.message = f"{err.message} (server suggests retrying in {err.retry_after:g} s)"
        return err

    # Convenience wrappers -------------------------------------------------------------------
    def get_json(self, path: str, params: dict | None = None) -> Any:
        return self.request("GET", path, params=params).json()

    def post_json(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.request("POST", path, json=body, headers=headers).json()
