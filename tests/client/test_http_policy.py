"""Retry policy and error mapping, against a throwaway HTTP server on 127.0.0.1.

The server answers from a script of (status, headers, body) and records every request it got, so
each test shows how many times the SDK really sent a request — the point of the policy is that a
submit without an Idempotency-Key is never sent twice.
"""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from li2_client import AuthError, Client, Conflict, Li2Error, NotFound, QuotaExceeded, ServerError, ValidationError
from li2_client.http import Transport, backoff_delay, is_idempotent


class ScriptedServer:
    """Answers requests from ``script`` in order (the last entry repeats); records requests."""

    def __init__(self):
        self.script: list[tuple[int, dict, object]] = []
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                status, headers, payload = outer.script[min(len(outer.requests), len(outer.script)) - 1]
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = ScriptedServer()
    yield s
    s.close()


def transport(url, sleeps, **kw):
    return Transport(url, "tok", retries=kw.pop("retries", 3), backoff=0.01, sleep=sleeps.append, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_backoff_grows_exponentially_with_cap_and_jitter():
    assert [backoff_delay(i, 0.5, 4.0, rng=lambda: 1.0) for i in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff_delay(2, 0.5, 30, rng=lambda: 0.0) == 1.0  # jitter keeps at least half


def test_which_requests_are_idempotent():
    assert is_idempotent("GET", None) and is_idempotent("delete", {})
    assert not is_idempotent("POST", None)
    assert is_idempotent("POST", {"idempotency-key": "k"})


def test_get_is_retried_on_5xx_then_succeeds(server):
    server.script = [(503, {}, {"message": "busy"}), (502, {}, {}), (200, {}, {"ok": True})]
    sleeps = []
    assert transport(server.url, sleeps).get_json("/x") == {"ok": True}
    assert len(server.requests) == 3 and len(sleeps) == 2
    assert server.requests[0]["headers"]["Authorization"] == "Bearer tok"


def test_get_gives_up_after_retries_with_server_error(server):
    server.script = [(500, {}, {"code": 500, "message": "boom"})]
    sleeps = []
    with pytest.raises(ServerError, match="boom"):
        transport(server.url, sleeps, retries=2).get_json("/x")
    assert len(server.requests) == 3


def test_post_without_key_is_never_retried(server):
    server.script = [(503, {}, {"message": "busy"}), (202, {}, {"id": "x"})]
    with pytest.raises(ServerError):
        transport(server.url, []).post_json("/experiments", {"spec": {}})
    assert len(server.requests) == 1


def test_submit_sends_one_key_and_retries_with_the_same_key(server):
    server.script = [(503, {}, {"message": "busy"}), (202, {}, {"id": "abc", "status": "queued"})]
    client = Client(server.url, token="tok", retries=3)
    client._http._sleep = lambda s: None
    exp = client.submit({"task": {"group": "cyclic", "order": 11}})
    assert (exp.id, exp.status) == ("abc", "queued")
    keys = [r["headers"].get("Idempotency-Key") for r in server.requests]
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    assert json.loads(server.requests[0]["body"]) == {
        "spec": {"task": {"group": "cyclic", "order": 11}},
        "force": False,
    }
    client.submit({"task": {}}, idempotency_key="mine")
    assert server.requests[-1]["headers"]["Idempotency-Key"] == "mine"


def test_429_waits_retry_after_then_succeeds(server):
    server.script = [(429, {"Retry-After": "2"}, {"message": "slow down"}), (200, {}, {"ok": 1})]
    sleeps = []
    assert transport(server.url, sleeps).post_json("/experiments", {}) == {"ok": 1}
    assert sleeps == [2.0]


def test_429_with_long_retry_after_raises_quota_at_once(server):
    server.script = [(429, {"Retry-After": "120"}, {"code": 429, "message": "too many active runs"})]
    sleeps = []
    with pytest.raises(QuotaExceeded) as info:
        transport(server.url, sleeps).get_json("/x")
    assert info.value.retry_after == 120.0 and info.value.status == 429
    assert len(server.requests) == 1 and sleeps == []
    assert "120" in str(info.value)


def test_connection_errors_retry_get_but_not_post():
    url = f"http://127.0.0.1:{free_port()}"
    sleeps = []
    with pytest.raises(ServerError, match="cannot reach"):
        transport(url, sleeps, retries=2).get_json("/x")
    assert len(sleeps) == 2
    sleeps.clear()
    with pytest.raises(ServerError, match="not retried"):
        transport(url, sleeps, retries=2).post_json("/experiments", {})
    assert sleeps == []


@pytest.mark.parametrize(
    "status, cls",
    [
        (401, AuthError),
        (403, AuthError),
        (404, NotFound),
        (400, ValidationError),
        (422, ValidationError),
        (413, ValidationError),
        (409, Conflict),
        (429, QuotaExceeded),
        (500, ServerError),
        (418, Li2Error),
    ],
)
def test_status_codes_map_to_typed_errors(server, status, cls):
    server.script = [(status, {}, {"code": status, "status": "x", "message": f"m{status}"})]
    with pytest.raises(cls) as info:
        transport(server.url, [], retries=0).get_json("/x")
    assert info.value.status == status and f"m{status}" in str(info.value)


def test_validation_errors_are_flattened_to_dotted_fields(server):
    body = {
        "code": 422,
        "message": "invalid spec",
        "errors": {"json": {"task": {"order": ["must be at least 2"]}, "training": {"lr": ["bad", "worse"]}}},
    }
    server.script = [(422, {}, body)]
    with pytest.raises(ValidationError) as info:
        transport(server.url, []).post_json("/experiments", {})
    assert info.value.errors == {"task.order": ["must be at least 2"], "training.lr": ["bad", "worse"]}
    assert "task.order: must be at least 2" in str(info.value)


def test_non_json_error_body_still_maps(server):
    server.script = [(502, {}, b"<html>bad gateway</html>")]
    with pytest.raises(ServerError, match="bad gateway"):
        transport(server.url, [], retries=0).get_json("/x")


def test_401_message_says_where_the_token_came_from(server):
    server.script = [(401, {}, {"message": "invalid token"})]
    with pytest.raises(AuthError, match="LI2_TOKEN"):
        Transport(server.url, "t", token_source="LI2_TOKEN").get_json("/x")
    with pytest.raises(AuthError, match="no token configured"):
        Transport(server.url, None).get_json("/x")


def test_list_walks_every_page(server):
    pages = [
        {
            "items": [{"id": f"e{i}", "status": "queued"} for i in range(p * 100, min(p * 100 + 100, 230))],
            "page": p + 1,
            "page_size": 100,
            "total": 230,
        }
        for p in range(3)
    ]
    server.script = [(200, {}, page) for page in pages]
    ids = [e.id for e in Client(server.url, token="t").list(status="queued")]
    assert ids == [f"e{i}" for i in range(230)]
    assert [r["path"].split("?")[1] for r in server.requests] == [
        "status=queued&page=1&page_size=100",
        "status=queued&page=2&page_size=100",
        "status=queued&page=3&page_size=100",
    ]
