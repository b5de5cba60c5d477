"""Where the SDK finds the service URL and the API token.

Precedence, first found wins, separately for url and token:

1. arguments (``Client(url=..., token=...)``, ``li2 --url/--token``);
2. environment ``LI2_URL`` / ``LI2_TOKEN``;
3. a config file, profile ``LI2_PROFILE`` (or the file's ``default_profile``, else ``"default"``):
   ``$LI2_CONFIG`` if set, else ``~/.config/li2lab/config.toml``, else ``config.json`` beside it.
4. url only: ``http://127.0.0.1:8000``.

A config file (TOML; JSON has the same shape)::

    default_profile = "lab"
    [profiles.lab]
    url = "http://gpu-server:8000"
    token = "..."

Top-level ``url``/``token`` keys are accepted too, for a single-profile file.
Env-only auth is a known pain of other clients (MLflow#12520), hence the file and profiles.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import Li2Error

DEFAULT_URL = "http://127.0.0.1:8000"


class ConfigError(Li2Error):
    """The config file is unreadable or names a profile it does not have."""


@dataclass(frozen=True)
class Settings:
    url: str
    token: str | None
    source: str  # where the token came from, for error messages: "argument", "LI2_TOKEN", file path


def default_config_paths() -> list[Path]:
    """Candidate config files in the order they are tried."""
    explicit = os.environ.get("LI2_CONFIG")
    if explicit:
        return [Path(explicit).expanduser()]
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "li2lab"
    return [base / "config.toml", base / "config.json"]


def _read_file(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                try:
                    import tomli as tomllib  # type: ignore[no-redef]
                except ModuleNotFoundError as exc:
                    raise ConfigError(
                        f"{path}: reading TOML needs Python 3.11+ or the 'tomli' package; or use config.json"
                    ) from exc
            data = tomllib.loads(text)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"config file {path} is not valid {path.suffix.lstrip('.') or 'TOML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table/object at top level")
    return data


def _profile_from(data: dict, path: Path, profile: str | None) -> dict:
    profiles = data.get("profiles") or {}
    wanted = profile or data.get("default_profile") or "default"
    if wanted in profiles:
        section = profiles[wanted]
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: profiles.{wanted} must be a table with url/token")
        return section
    if profile and profile != "default":
        have = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"{path}: no profile {profile!r} (profiles in the file: {have})")
    return {k: data[k] for k in ("url", "token") if k in data}


def resolve(url: str | None = None, token: str | None = None, profile: str | None = None) -> Settings:
    """Combine arguments, environment and config file into one ``Settings``."""
    profile = profile or os.environ.get("LI2_PROFILE") or None
    file_values: dict = {}
    file_path = None
    for path in default_config_paths():
        if path.is_file():
            file_values = _profile_from(_read_file(path), path, profile)
            file_path = path
            break
        if os.environ.get("LI2_CONFIG"):
            raise ConfigError(f"LI2_CONFIG points to {path}, which does not exist")

    if token:
        tok, source = token, "argument"
    elif os.environ.get("LI2_TOKEN"):
        tok, source = os.environ["LI2_TOKEN"], "LI2_TOKEN"
    elif file_values.get("token"):
        tok, source = str(file_values["token"]), str(file_path)
    else:
        tok, source = None, "none"
    final_url = url or os.environ.get("LI2_URL") or file_values.get("url") or DEFAULT_URL
    return Settings(url=str(final_url).rstrip("/"), token=tok, source=source)
