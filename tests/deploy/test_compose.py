"""Static checks of the compose files (no Docker engine here).

Each compose file is interpolated the way `docker compose` does it (with the values of
deploy/env.example standing in for .env), validated against the vendored compose-spec schema, and
then checked for the settings that keep a deployment safe and recoverable: Redis and PostgreSQL not
published, the API on loopback only, Redis persistent and non-evicting, one reserved GPU per worker
with init, a checkpoint-length stop grace period and a healthcheck, and secrets that must come
from .env and that the service refuses while they are still placeholders.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
MAIN = ROOT / "docker-compose.yml"
WORKER_ONLY = ROOT / "docker-compose.worker.yml"
CLUSTER = ROOT / "deploy" / "compose.cluster.yml"
ENV_EXAMPLE = ROOT / "deploy" / "env.example"
ALL_FILES = [MAIN, WORKER_ONLY, CLUSTER]
WORKER_IMAGE = "li2lab-worker:"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}; $$ is a literal $.
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class MissingVariable(Exception):
    """Raised where `docker compose` would stop with `required variable ... is missing a value`."""


def interpolate(text: str, env: dict[str, str]) -> str:
    """Substitute variables as compose does; a `:?`/`?` variable that is unset stops with its message."""

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        value = env.get(name)
        unset_or_empty = value is None or (value == "" and op and op.startswith(":"))
        if op in (":-", "-"):
            return arg if unset_or_empty else value
        if op in (":?", "?"):
            if unset_or_empty:
                raise MissingVariable(f"{name}: {arg}")
            return value
        return value or ""

    return _VAR.sub(sub, text)


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an env file; comments and blank lines skipped."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def example_env() -> dict[str, str]:
    """deploy/env.example as a user's .env before editing, plus the commented-out cluster address."""
    return {**parse_env_file(ENV_EXAMPLE), "CLUSTER_BIND_IP": "10.0.0.10"}


def load(path: Path, env: dict[str, str] | None = None) -> dict:
    """The compose file as compose sees it after interpolation (YAML anchors and merges applied)."""
    return yaml.safe_load(interpolate(path.read_text(), example_env() if env is None else env))


def workers(doc: dict) -> dict[str, dict]:
    return {name: svc for name, svc in doc["services"].items() if svc.get("image", "").startswith(WORKER_IMAGE)}


def seconds(duration: str) -> float:
    """A compose duration such as '2m', '90s' or '1m30s' in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: p.name)
def test_compose_file_validates_against_the_compose_spec(path):
    jsonschema.Draft201909Validator(SCHEMA).validate(load(path))


def test_the_schema_check_would_catch_a_misspelt_key():
    doc = load(MAIN)
    doc["services"]["api"]["healthchek"] = doc["services"]["api"].pop("healthcheck")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft201909Validator(SCHEMA).validate(doc)


@pytest.mark.parametrize("secret", ["POSTGRES_PASSWORD", "REDIS_PASSWORD"])
def test_a_missing_secret_stops_compose(secret):
    env = example_env()
    del env[secret]
    with pytest.raises(MissingVariable, match=secret):
        load(MAIN, env)


@pytest.mark.parametrize("secret", ["LI2_DATABASE_URL", "LI2_BROKER_URL"])
def test_a_worker_host_without_the_cluster_urls_stops_compose(secret):
    env = example_env()
    del env[secret]
    with pytest.raises(MissingVariable, match=secret):
        load(WORKER_ONLY, env)


def test_redis_and_postgres_are_not_published_on_the_host():
    services = load(MAIN)["services"]
    for name in ("redis", "postgres"):
        assert "ports" not in services[name], f"{name} must not publish ports (they bypass host firewalls)"
        assert services[name].get("network_mode") != "host"


def test_only_the_api_publishes_a_port_and_only_on_loopback_by_default():
    services = load(MAIN)["services"]
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == {"api"}
    for port in services["api"]["ports"]:
        assert str(port).startswith("127.0.0.1:"), port
        assert str(port).endswith(":8000")


def test_the_cluster_overlay_publishes_only_on_a_named_private_address():
    raw = yaml.safe_load(CLUSTER.read_text())["services"]
    for svc in raw.values():
        assert all(p.startswith("${CLUSTER_BIND_IP:?") for p in svc["ports"]), svc["ports"]
    with pytest.raises(MissingVariable, match="CLUSTER_BIND_IP"):
        load(CLUSTER, parse_env_file(ENV_EXAMPLE))
    services = load(CLUSTER)["services"]
    assert set(services) == {"redis", "postgres"}
    assert services["redis"]["ports"] == ["10.0.0.10:6379:6379"]
    assert services["postgres"]["ports"] == ["10.0.0.10:5432:5432"]


def test_redis_persists_its_queue_never_evicts_and_needs_a_password():
    redis = load(MAIN)["services"]["redis"]
    cmd = redis["command"]
    option = {cmd[i]: cmd[i + 1] for i in range(1, len(cmd) - 1) if cmd[i].startswith("--")}
    assert option["--appendonly"] == "yes"
    assert option["--maxmemory-policy"] == "noeviction"
    assert option["--requirepass"] == example_env()["REDIS_PASSWORD"]
    assert any(v.endswith(":/data") for v in redis["volumes"]), "the append-only file needs a volume"
    assert redis["healthcheck"]["test"][-1] == "ping"
    assert redis["environment"]["REDISCLI_AUTH"] == option["--requirepass"], "the healthcheck must authenticate"


def test_postgres_keeps_its_data_in_a_volume_and_reports_readiness():
    pg = load(MAIN)["services"]["postgres"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in pg["volumes"])
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert pg["environment"]["POSTGRES_PASSWORD"] == example_env()["POSTGRES_PASSWORD"]


def test_the_migration_runs_once_after_postgres_is_healthy():
    migrate = load(MAIN)["services"]["migrate"]
    assert migrate["command"] == ["li2lab", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_api_starts_after_the_migration_and_healthy_servers():
    api = load(MAIN)["services"]["api"]
    assert api["command"][0] == "gunicorn" and api["command"][-1] == "li2_service.wsgi:app"
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert api["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(api["healthcheck"]["test"])


@pytest.mark.parametrize("path", [MAIN, WORKER_ONLY], ids=lambda p: p.name)
def test_every_worker_reserves_its_own_gpu_and_stops_gracefully(path):
    found = workers(load(path))
    assert found, f"no worker service in {path.name}"
    claimed: list[str] = []
    for name, svc in found.items():
        devices = svc["deploy"]["resources"]["reservations"]["devices"]
        assert len(devices) == 1, name
        dev = devices[0]
        assert dev["driver"] == "nvidia" and "gpu" in dev["capabilities"], name
        assert ("count" in dev) != ("device_ids" in dev), f"{name}: count and device_ids are exclusive"
        claimed += dev.get("device_ids", [])
        assert svc["init"] is True, f"{name}: init lets SIGTERM reach the worker"
        assert seconds(svc["stop_grace_period"]) >= 60, f"{name}: too short to checkpoint"
        assert isinstance(svc["command"], list), f"{name}: exec form, so signals reach the worker"
        assert svc["command"][:2] == ["li2lab", "worker"], name
        assert svc["healthcheck"]["test"][0] == "CMD", name
    assert len(claimed) == len(set(claimed)), f"two workers reserve the same GPU: {claimed}"


def test_workers_on_the_first_box_wait_for_the_migration_and_redis():
    for name, svc in workers(load(MAIN)).items():
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy", name


def test_the_worker_only_file_runs_nothing_but_workers():
    doc = load(WORKER_ONLY)
    assert set(workers(doc)) == set(doc["services"])
    assert "volumes" not in doc, "extra GPU servers need no shared storage: results live in PostgreSQL"


def test_every_li2_process_gets_both_urls_and_the_env_file():
    for path in (MAIN, WORKER_ONLY):
        for name, svc in load(path)["services"].items():
            if svc.get("image", "").startswith("li2lab-"):
                assert {"LI2_DATABASE_URL", "LI2_BROKER_URL"} <= set(svc["environment"]), name
                assert svc["env_file"] == ".env", name


def _li2_environments() -> list[dict[str, str]]:
    envs = []
    for path in (MAIN, WORKER_ONLY):
        for svc in load(path)["services"].values():
            if svc.get("image", "").startswith("li2lab-"):
                envs.append({**example_env(), **svc["environment"]})
    return envs


def test_the_service_refuses_the_example_placeholders():
    from li2_service.config import load_config
    from li2_store.config import ConfigError, check_secrets

    for env in _li2_environments():
        assert "CHANGE_ME" in env["LI2_DATABASE_URL"]
        with pytest.raises(ConfigError, match="CHANGE_ME"):
            check_secrets(load_config(env))


def test_the_service_accepts_the_same_files_with_real_secrets():
    from li2_service.config import load_config
    from li2_store.config import check_secrets

    real = {k: v.replace("CHANGE_ME", "5f3a9c") for k, v in example_env().items()}
    for path in (MAIN, WORKER_ONLY):
        for svc in load(path, real)["services"].values():
            if svc.get("image", "").startswith("li2lab-"):
                check_secrets(load_config({**real, **svc["environment"]}))


def test_every_variable_the_compose_files_need_is_in_env_example():
    example = ENV_EXAMPLE.read_text()
    for path in ALL_FILES:
        for m in _VAR.finditer(path.read_text()):
            name = m.group(1) or m.group(4)
            if name:
                assert re.search(rf"^#? ?{name}=", example, re.M), f"{path.name} uses {name}; add it to env.example"


def test_env_files_stay_out_of_git_and_images():
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert not (ROOT / ".env").exists() or ".env" not in _tracked_files()


def _tracked_files() -> list[str]:
    import subprocess

    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False)
    return out.stdout.split()


def test_build_targets_are_stages_of_the_dockerfile():
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.M | re.I))
    for path in (MAIN, WORKER_ONLY):
        for name, svc in load(path)["services"].items():
            if "build" in svc:
                assert svc["build"]["target"] in stages, name
                assert svc["image"].startswith(f"li2lab-{svc['build']['target']}:"), name


def test_image_tags_carry_the_one_version_of_pyproject():
    """The version lives in pyproject.toml; compose files and the Dockerfile's build hints follow it."""
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    tags = set()
    for path in (MAIN, WORKER_ONLY, ROOT / "Dockerfile", ROOT / "docs" / "deployment.md"):
        tags |= set(re.findall(r"li2lab-(?:api|worker):([0-9][0-9A-Za-z.+-]*)", path.read_text()))
    assert tags == {version}


def test_the_readme_block_for_a_second_gpu_adds_a_valid_worker_with_its_own_gpu():
    section = (ROOT / "README.md").read_text().split("### Several GPUs", 1)[1].split("\n### ", 1)[0]
    block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    text = MAIN.read_text().replace("\nvolumes:\n", "\n" + block + "\nvolumes:\n", 1)
    doc = yaml.safe_load(interpolate(text, example_env()))
    jsonschema.Draft201909Validator(SCHEMA).validate(doc)
    found = workers(doc)
    assert len(found) == 2
    ids = [svc["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] for svc in found.values()]
    assert sorted(ids) == [["0"], ["1"]]
    assert all(svc["init"] and svc["healthcheck"] for svc in found.values()), "the merge carries the settings"
