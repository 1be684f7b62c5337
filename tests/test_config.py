"""Settings precedence: call arguments > environment > TOML > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from flashlane.config import DEFAULT_MAX_OUTPUT_TOKENS, DEFAULT_TIMEOUT_S, load_settings
from flashlane.errors import ConfigError


def test_defaults_are_the_safe_ones() -> None:
    s = load_settings()
    assert s.model == "gemini-3.1-flash-lite"
    assert s.timeout_s == DEFAULT_TIMEOUT_S == 30.0
    assert s.max_output_tokens == DEFAULT_MAX_OUTPUT_TOKENS
    assert s.thinking is None  # the request layer sends "minimal" explicitly
    assert s.backend == "gemini" and not s.has_credentials


def test_precedence_arguments_over_env_over_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "flashlane.toml").write_text('model = "gemini-2.5-flash-lite"\ntimeout_s = 12\nmax_output_tokens = 300\n')
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert (s.model, s.timeout_s, s.max_output_tokens) == ("gemini-2.5-flash-lite", 12.0, 300)
    assert s.config_file and s.config_file.endswith("flashlane.toml")
    monkeypatch.setenv("FLASHLANE_MODEL", "gemini-3-flash-preview")
    monkeypatch.setenv("FLASHLANE_TIMEOUT", "7")
    s = load_settings()
    assert (s.model, s.timeout_s, s.max_output_tokens) == ("gemini-3-flash-preview", 7.0, 300)
    s = load_settings(model="gemini-3.1-flash-lite", timeout_s=3)
    assert (s.model, s.timeout_s) == ("gemini-3.1-flash-lite", 3.0)


def test_flashlane_config_env_and_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = Path.home() / ".config" / "flashlane"
    user.mkdir(parents=True)
    (user / "config.toml").write_text('[flashlane]\nthinking = "low"\n')
    assert load_settings().thinking == "low"
    explicit = tmp_path / "x.toml"
    explicit.write_text('thinking = "medium"\n')
    monkeypatch.setenv("FLASHLANE_CONFIG", str(explicit))
    assert load_settings().thinking == "medium"
    monkeypatch.setenv("FLASHLANE_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()


def test_key_precedence_matches_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-key")
    assert load_settings().api_key == "gemini-key"
    monkeypatch.setenv("GOOGLE_API_KEY", "google-key")
    assert load_settings().api_key == "google-key"
    assert "google-key" not in repr(load_settings())


def test_backends_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "proj")
    s = load_settings()
    assert (s.backend, s.vertex_project, s.vertex_location) == ("vertex", "proj", "global")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "us-central1")
    assert load_settings().vertex_location == "us-central1"
    monkeypatch.setenv("FLASHLANE_EMULATOR", "1")
    assert load_settings().backend == "emulator"


def test_base_url_without_key_gets_a_dummy_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:9")
    s = load_settings()
    assert s.base_url == "http://127.0.0.1:9" and s.has_credentials


def test_vertex_without_project_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "1")
    with pytest.raises(ConfigError, match="GOOGLE_CLOUD_PROJECT"):
        load_settings().require_credentials()


def test_no_credentials_error_names_all_three_ways() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings().require_credentials()
    text = info.value.message + " " + (info.value.hint or "")
    assert "aistudio.google.com" in text and "Vertex" in text and "--emulator" in text
    assert info.value.exit_code == 2


@pytest.mark.parametrize(("env", "value", "match"), [
    ("FLASHLANE_TIMEOUT", "soon", "invalid value"),
    ("FLASHLANE_MAX_OUTPUT_TOKENS", "-5", "invalid value"),
    ("FLASHLANE_THINKING", "extreme", "unknown thinking"),
    ("FLASHLANE_LIMITER", "etcd", "unknown limiter"),
])
def test_bad_values_are_config_errors(monkeypatch: pytest.MonkeyPatch, env: str, value: str, match: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=match):
        load_settings()


def test_thinking_must_fit_the_model() -> None:
    with pytest.raises(ConfigError, match="takes a thinking budget"):
        load_settings(model="gemini-2.5-flash-lite", thinking="low")
    with pytest.raises(ConfigError, match="takes a thinking level"):
        load_settings(model="gemini-3.1-flash-lite", thinking="512")
    assert load_settings(model="gemini-2.5-flash-lite", thinking="512").thinking == "512"


def test_toml_refuses_keys_and_unknown_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flashlane.toml").write_text('api_key = "secret"\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "secret" not in info.value.message
    (tmp_path / "flashlane.toml").write_text('modle = "x"\n')
    with pytest.raises(ConfigError, match="unknown setting 'modle'"):
        load_settings()
    (tmp_path / "flashlane.toml").write_text('model = \n')
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings()
