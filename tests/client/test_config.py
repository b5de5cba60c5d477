"""Where the SDK finds url and token: arguments > environment > config file (profiles) > default."""

import json

import pytest

from li2_client.config import DEFAULT_URL, ConfigError, resolve


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("LI2_URL", "LI2_TOKEN", "LI2_CONFIG", "LI2_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def write_toml(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


TOML = """
default_profile = "lab"
[profiles.lab]
url = "http://lab:8000/"
token = "lab-token"
[profiles.home]
url = "http://home:9000"
token = "home-token"
"""


def test_nothing_configured_gives_default_url_and_no_token(clean_env):
    s = resolve()
    assert (s.url, s.token, s.source) == (DEFAULT_URL, None, "none")


def test_default_config_file_and_default_profile(clean_env, tmp_path):
    write_toml(tmp_path / "xdg" / "li2lab" / "config.toml", TOML)
    s = resolve()
    assert (s.url, s.token) == ("http://lab:8000", "lab-token")
    assert s.source.endswith("config.toml")


def test_profile_argument_and_env_select_profile(clean_env, tmp_path):
    write_toml(tmp_path / "xdg" / "li2lab" / "config.toml", TOML)
    assert resolve(profile="home").token == "home-token"
    clean_env.setenv("LI2_PROFILE", "home")
    assert resolve().url == "http://home:9000"


def test_unknown_profile_names_the_ones_available(clean_env, tmp_path):
    write_toml(tmp_path / "xdg" / "li2lab" / "config.toml", TOML)
    with pytest.raises(ConfigError, match="home, lab"):
        resolve(profile="nope")


def test_env_beats_file_and_arguments_beat_env(clean_env, tmp_path):
    write_toml(tmp_path / "xdg" / "li2lab" / "config.toml", TOML)
    clean_env.setenv("LI2_TOKEN", "env-token")
    clean_env.setenv("LI2_URL", "http://env:1")
    s = resolve()
    assert (s.url, s.token, s.source) == ("http://env:1", "env-token", "LI2_TOKEN")
    s = resolve(url="http://arg:2", token="arg-token")
    assert (s.url, s.token, s.source) == ("http://arg:2", "arg-token", "argument")


def test_li2_config_points_to_a_json_file_with_top_level_keys(clean_env, tmp_path):
    path = tmp_path / "my.json"
    path.write_text(json.dumps({"url": "http://json:3", "token": "json-token"}))
    clean_env.setenv("LI2_CONFIG", str(path))
    s = resolve()
    assert (s.url, s.token) == ("http://json:3", "json-token")


def test_json_beside_toml_is_used_when_no_toml(clean_env, tmp_path):
    p = tmp_path / "xdg" / "li2lab" / "config.json"
    p.parent.mkdir(parents=True)
    p.write_text(json.dumps({"profiles": {"default": {"token": "t"}}}))
    assert resolve().token == "t"


def test_missing_li2_config_file_is_an_error(clean_env, tmp_path):
    clean_env.setenv("LI2_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        resolve()


def test_broken_toml_is_a_clear_error(clean_env, tmp_path):
    write_toml(tmp_path / "xdg" / "li2lab" / "config.toml", "url = [unclosed")
    with pytest.raises(ConfigError, match="not valid"):
        resolve()
