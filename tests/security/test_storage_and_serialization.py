"""Secrets at rest and data on the wire: hashed tokens, no pickle anywhere, JSON-only Celery.

- tokens: the database holds only sha256(token); the raw token appears nowhere in the DB files;
- sources: no module of our packages imports pickle/marshal/shelve/dill, calls eval/exec/compile,
  torch.load without weights_only=True, yaml.load without a safe loader, or numpy/pandas pickle
  loaders (checked on the syntax tree, so words in docstrings don't count);
- Celery: JSON is the only accepted content type, and a pickled message is refused unopened;
- checkpoints: li2.checkpoint reads safetensors only; a pickle posing as a checkpoint is rejected
  without being executed.
"""

from __future__ import annotations

import ast
import hashlib
import os
import pickle
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [
    ROOT / "service" / "li2_service",
    ROOT / "worker" / "li2",
    ROOT / "worker" / "li2_worker",
    ROOT / "client" / "li2_client",
]
CANARY = Path("/tmp/li2-pickle-canary")


class _Exploit:
    """Unpickling this runs os.system: the classic pickle payload."""

    def __reduce__(self):
        return (os.system, (f"touch {CANARY}",))


def exploit_pickle() -> bytes:
    return pickle.dumps(_Exploit())


# ---------------------------------------------------------------------------------- tokens


def test_tokens_are_stored_hashed(app, engine, world, client):
    with engine.connect() as c:
        rows = c.execute(sa.text("SELECT name, token_hash FROM users")).all()
    stored = dict(rows)
    for name, token in (("alice", world.alice), ("bob", world.bob), ("root", world.root)):
        assert stored[name] == hashlib.sha256(token.encode()).hexdigest()
        assert stored[name] != token and len(token) >= 32
    # The raw token must not be anywhere in the database files (main file and WAL).
    engine.dispose()  # checkpoint the WAL on close
    db_path = Path(engine.url.database)
    blobs = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    for token in (world.alice, world.bob, world.root):
        assert token.encode() not in blobs
    # ... and the hash is not a credential.
    r = client.get("/api/v1/experiments", headers={"Authorization": f"Bearer {stored['alice']}"})
    assert r.status_code == 401


# ---------------------------------------------------------------------------------- sources

BANNED_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle", "jsonpickle", "joblib"}
BANNED_BUILTINS = {"eval", "exec", "compile", "__import__"}


def _kw(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    return ""


def unsafe_calls(source: str) -> list[str]:
    """Findings of one module's syntax tree, as 'line: what'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if a.name.split(".")[0] in BANNED_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in BANNED_MODULES:
            found.append(f"{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in BANNED_BUILTINS or name.endswith(("builtins.eval", "builtins.exec")):
                found.append(f"{node.lineno}: {name}(...)")
            elif name.endswith("torch.load"):
                wo = _kw(node, "weights_only")
                if not (isinstance(wo, ast.Constant) and wo.value is True):
                    found.append(f"{node.lineno}: torch.load without weights_only=True")
            elif name in ("yaml.load", "yaml.load_all", "yaml.unsafe_load", "yaml.full_load"):
                loader = _kw(node, "Loader")
                if name != "yaml.load" or loader is None or "Safe" not in _dotted(loader):
                    found.append(f"{node.lineno}: {name} without SafeLoader")
            elif name.endswith(("np.load", "numpy.load")):
                ap = _kw(node, "allow_pickle")
                if ap is not None and not (isinstance(ap, ast.Constant) and ap.value is False):
                    found.append(f"{node.lineno}: numpy.load(allow_pickle=...)")
            elif name.endswith(("read_pickle", "to_pickle")):
                found.append(f"{node.lineno}: {name}")
    return found


def test_scanner_catches_what_it_looks_for():
    """The scanner itself can fail: each banned pattern in a sample is reported."""
    sample = (
        "import pickle\nfrom marshal import loads\nimport yaml, torch, numpy as np\n"
        "eval('1')\nexec('x')\ntorch.load(f)\ntorch.load(f, weights_only=False)\nyaml.load(s)\n"
        "np.load(f, allow_pickle=True)\nimport pandas\npandas.read_pickle(f)\n"
        "torch.load(f, weights_only=True)\nyaml.load(s, Loader=yaml.SafeLoader)\nnp.load(f)\n"
    )
    found = unsafe_calls(sample)
    assert len(found) == 9, found


def test_no_unsafe_deserialization_or_eval_in_our_packages():
    files = [p for pkg in PACKAGES for p in pkg.rglob("*.py")]
    assert len(files) > 20, "the package folders moved; update PACKAGES"
    findings = {str(p.relative_to(ROOT)): f for p in files if (f := unsafe_calls(p.read_text()))}
    assert not findings, f"unsafe deserialization / eval in: {findings}"


# ---------------------------------------------------------------------------------- Celery


def test_celery_accepts_json_only(tmp_path):
    from kombu.exceptions import ContentDisallowed
    from kombu.serialization import loads

    from li2_worker.celery_app import make_celery

    app = make_celery(f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}")
    conf = app.conf
    assert conf.task_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert list(conf.result_accept_content or ["json"]) == ["json"]
    # The worker's consumer decodes with exactly this accept list: a pickled body is refused.
    with pytest.raises(ContentDisallowed):
        loads(exploit_pickle(), "application/x-python-serialize", "binary", accept=conf.accept_content)
    with pytest.raises(ContentDisallowed):
        loads(b"!!python/object/apply:os.system ['true']", "application/x-yaml", "utf-8", accept=conf.accept_content)
    assert not CANARY.exists()


# ---------------------------------------------------------------------------------- checkpoints


def test_checkpoint_reader_is_safetensors_only():
    import torch

    from li2 import checkpoint

    blob = checkpoint.dump({"param.W": torch.ones(2, 3)}, {"epoch": [0]}, 7, {"seed": 1})
    tensors, _history, epoch, _spec = checkpoint.read(blob)
    assert epoch == 7 and torch.equal(tensors["param.W"], torch.ones(2, 3))
    from safetensors.torch import load

    assert set(load(blob)) == {"param.W"}  # a plain safetensors file any tool can open
    for hostile in (exploit_pickle(), b"", b"\xff" * 64, blob[:20]):
        with pytest.raises(ValueError):
            checkpoint.read(hostile)
    assert not CANARY.exists(), "a pickle posing as a checkpoint was executed"
