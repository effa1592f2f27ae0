"""Settings: one validation pass over the environment, every problem at once, no value echoed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from auto_review.errors import ConfigError
from auto_review.settings import (
    GATEWAY_REQUIRED,
    Isolation,
    Settings,
    default_state_dir,
    load_settings,
    unknown_variable_warnings,
)

STRONG = "s3cr3t-" + "x" * 40
CI_TOKEN = "ci-token-" + "y" * 40
FORGE_TOKEN = "forge-token-0123456789abcdef"
API_KEY = "llm-api-key-0123456789"

GOOD_GATEWAY_ENV = {
    "FORGEJO_BASE_URL": "https://forge.example/",
    "AR_FORGEJO_TOKEN": FORGE_TOKEN,
    "LLM_BASE_URL": "http://127.0.0.1:11434/v1",
    "WEBHOOK_SECRET": STRONG,
}


def _problems(env: dict[str, str], require: frozenset[str] = frozenset()) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        load_settings(env, require=require)
    return info.value.problems


def test_settings_load_defaults_when_environment_is_empty() -> None:
    settings = load_settings({}).settings
    assert settings.isolation is Isolation.FULL
    assert settings.gateway_bind == "127.0.0.1:8080"
    assert settings.webhook_secret is None


def test_settings_accept_a_complete_gateway_environment() -> None:
    loaded = load_settings(GOOD_GATEWAY_ENV, require=GATEWAY_REQUIRED)
    assert loaded.settings.forgejo_base_url == "https://forge.example"
    assert loaded.warnings == ()


def test_settings_treat_blank_values_as_unset() -> None:
    settings = load_settings(
        {"AR_GATEWAY_BIND": "   ", "WEBHOOK_SECRET": "", "AR_ISOLATION": " "}
    ).settings
    assert settings.gateway_bind == "127.0.0.1:8080"
    assert settings.webhook_secret is None
    assert settings.isolation is Isolation.FULL


def test_settings_refuse_a_blank_required_variable_as_missing() -> None:
    env = dict(GOOD_GATEWAY_ENV, AR_FORGEJO_TOKEN="  ")
    assert _problems(env, GATEWAY_REQUIRED) == ("AR_FORGEJO_TOKEN is required but not set",)


def test_settings_name_every_missing_required_variable_at_once() -> None:
    problems = _problems({}, GATEWAY_REQUIRED)
    assert len(problems) == len(GATEWAY_REQUIRED)
    for name in GATEWAY_REQUIRED:
        assert any(name in problem for problem in problems)


def test_settings_refuse_short_webhook_secret_without_echoing_it() -> None:
    short = "tooshort-secret-value"
    problems = _problems({"WEBHOOK_SECRET": short})
    assert problems == ("WEBHOOK_SECRET: must be at least 32 bytes long",)
    assert all(short not in problem for problem in problems)


def test_settings_refuse_short_ci_review_token_without_echoing_it() -> None:
    short = "ci-token-short"
    problems = _problems({"AR_CI_REVIEW_TOKEN": short})
    assert problems == ("AR_CI_REVIEW_TOKEN: must be at least 32 bytes long",)
    assert all(short not in problem for problem in problems)


def test_settings_refuse_short_operator_token_without_echoing_it() -> None:
    short = "operator-token-short"
    problems = _problems({"AR_OPERATOR_TOKEN": short})
    assert problems == ("AR_OPERATOR_TOKEN: must be at least 32 bytes long",)
    assert all(short not in problem for problem in problems)
    assert load_settings({"AR_OPERATOR_TOKEN": "o" * 32}).settings.operator_token is not None


@pytest.mark.parametrize("other", ["AR_FORGEJO_TOKEN", "WEBHOOK_SECRET", "AR_CI_REVIEW_TOKEN"])
def test_settings_refuse_an_operator_token_that_repeats_another_secret(other: str) -> None:
    shared = "shared-" + "z" * 40
    problems = _problems({other: shared, "AR_OPERATOR_TOKEN": shared})
    assert problems == (
        "AR_OPERATOR_TOKEN: must differ from AR_FORGEJO_TOKEN, WEBHOOK_SECRET and "
        "AR_CI_REVIEW_TOKEN",
    )
    assert all(shared not in problem for problem in problems)
    distinct = load_settings({other: shared, "AR_OPERATOR_TOKEN": shared + "-operator"})
    assert distinct.settings.operator_token is not None  # positive control


def test_settings_count_secret_length_in_bytes_not_characters() -> None:
    # 16 characters, 32 bytes in UTF-8: accepted; 15 such characters (30 bytes) are not.
    assert load_settings({"WEBHOOK_SECRET": "é" * 16}).settings.webhook_secret is not None
    assert _problems({"WEBHOOK_SECRET": "é" * 15})


def test_settings_accept_secrets_of_exactly_32_bytes() -> None:
    settings = load_settings({"WEBHOOK_SECRET": "a" * 32, "AR_CI_REVIEW_TOKEN": "b" * 32}).settings
    assert settings.webhook_secret is not None
    assert settings.ci_review_token is not None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://forge.example", "http:// or https://"),
        ("forge.example", "http:// or https://"),
        ("https://", "must name a host"),
        ("https://bot:hunter2-password@forge.example", "credentials"),
        ("https://forge.example/?token=abc", "query or fragment"),
        ("https://forge.example/#frag", "query or fragment"),
        ("https://forge.example:99999", "invalid port"),
        ("https://forge.example:port", "invalid port"),
    ],
)
def test_settings_refuse_a_bad_url_naming_the_reason(url: str, reason: str) -> None:
    problems = _problems({"FORGEJO_BASE_URL": url})
    assert len(problems) == 1
    assert problems[0].startswith("FORGEJO_BASE_URL: ")
    assert reason in problems[0]
    assert "hunter2" not in problems[0]


def test_settings_accept_a_url_with_port_and_path_and_drop_the_trailing_slash() -> None:
    settings = load_settings({"LLM_BASE_URL": "http://[::1]:11434/v1/"}).settings
    assert settings.llm_base_url == "http://[::1]:11434/v1"


def test_settings_check_every_url_variable() -> None:
    names = ["FORGEJO_BASE_URL", "LLM_BASE_URL", "LLM_CHEAP_BASE_URL", "LLM_EMBEDDING_BASE_URL"]
    problems = _problems(dict.fromkeys(names, "gopher://x"))
    assert sorted(p.split(":")[0] for p in problems) == sorted(names)


def test_settings_list_every_problem_at_once() -> None:
    env = {
        "FORGEJO_BASE_URL": "ftp://forge.example",
        "WEBHOOK_SECRET": "short",
        "AR_GATEWAY_BIND": "no-port",
        "AR_ISOLATION": "paranoid",
        "AR_REVIEW_CONCURRENCY": "many",
    }
    problems = _problems(env, frozenset({"LLM_BASE_URL"}))
    named = {problem.split(" ")[0].rstrip(":") for problem in problems}
    assert named == {
        "LLM_BASE_URL",
        "FORGEJO_BASE_URL",
        "WEBHOOK_SECRET",
        "AR_GATEWAY_BIND",
        "AR_ISOLATION",
        "AR_REVIEW_CONCURRENCY",
    }


def test_settings_problems_never_echo_any_value() -> None:
    env = {
        "WEBHOOK_SECRET": "short-secret-value",
        "AR_CI_REVIEW_TOKEN": "short-ci-token-value",
        "AR_OPERATOR_TOKEN": "short-operator-token",
        "AR_ISOLATION": "isolation-value-zzz",
        "AR_REVIEW_CONCURRENCY": "concurrency-value-zzz",
        "AR_GATEWAY_BIND": "bind-value-zzz",
        "FORGEJO_BASE_URL": "https://user:url-password-zzz@h",
    }
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    text = str(info.value) + "\n".join(info.value.problems)
    for value in ("short-secret-value", "short-ci-token-value", "short-operator-token",
                  "value-zzz", "url-password"):  # fmt: skip
        assert value not in text


def test_settings_warn_about_an_unknown_ar_variable_naming_the_closest() -> None:
    loaded = load_settings({"AR_ISOLATON": "full", "AR_WHATEVER_ELSE_ENTIRELY": "1"})
    assert loaded.warnings == (
        "unknown variable AR_ISOLATON is ignored; did you mean AR_ISOLATION?",
        "unknown variable AR_WHATEVER_ELSE_ENTIRELY is ignored",
    )


def test_settings_do_not_warn_about_known_or_foreign_variables() -> None:
    env = {"AR_ISOLATION": "none", "PATH": "/usr/bin", "LLM_BASE_URL": "http://h"}
    assert unknown_variable_warnings(env) == ()


def test_settings_are_frozen() -> None:
    settings = load_settings({}).settings
    with pytest.raises(ValidationError):
        settings.gateway_bind = "0.0.0.0:1"  # type: ignore[misc]


def test_settings_read_only_what_load_settings_hands_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AR_GATEWAY_BIND", "0.0.0.0:9999")
    assert load_settings({}).settings.gateway_bind == "127.0.0.1:8080"


def test_forge_slice_carries_url_token_and_login() -> None:
    forge = load_settings(GOOD_GATEWAY_ENV).settings.forge()
    assert forge.base_url == "https://forge.example"
    assert forge.token.get_secret_value() == FORGE_TOKEN
    assert forge.bot_login == "auto-review"


def test_forge_slice_refuses_when_forge_is_not_configured() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({}).settings.forge()
    assert len(info.value.problems) == 2


def test_llm_slice_cheap_and_embedding_tiers_inherit_endpoint_and_key() -> None:
    env = {
        "LLM_BASE_URL": "http://model.local/v1",
        "LLM_API_KEY": API_KEY,
        "LLM_CHEAP_MODEL": "small",
        "LLM_EMBEDDING_MODEL": "embed",
    }
    llm = load_settings(env).settings.llm()
    assert llm.reasoning.base_url == "http://model.local/v1"
    assert llm.cheap is not None
    assert llm.embedding is not None
    for tier in (llm.cheap, llm.embedding):
        assert tier.base_url == "http://model.local/v1"
        assert tier.api_key is not None
        assert tier.api_key.get_secret_value() == API_KEY
    assert (llm.cheap.model, llm.embedding.model) == ("small", "embed")


def test_llm_slice_tiers_use_their_own_endpoint_and_key_when_set() -> None:
    env = {
        "LLM_BASE_URL": "http://model.local/v1",
        "LLM_API_KEY": API_KEY,
        "LLM_CHEAP_MODEL": "small",
        "LLM_CHEAP_BASE_URL": "http://cheap.local/v1",
        "LLM_CHEAP_API_KEY": "cheap-key-0123456",
    }
    cheap = load_settings(env).settings.llm().cheap
    assert cheap is not None
    assert cheap.base_url == "http://cheap.local/v1"
    assert cheap.api_key == SecretStr("cheap-key-0123456")


def test_llm_slice_leaves_optional_tiers_off_when_their_model_is_unset() -> None:
    llm = load_settings({"LLM_BASE_URL": "http://model.local/v1"}).settings.llm()
    assert llm.cheap is None
    assert llm.embedding is None


def test_llm_slice_refuses_without_a_reasoning_endpoint() -> None:
    with pytest.raises(ConfigError, match="LLM_BASE_URL"):
        load_settings({}).settings.llm()


def test_public_view_masks_every_secret() -> None:
    secrets = {
        "AR_FORGEJO_TOKEN": FORGE_TOKEN,
        "WEBHOOK_SECRET": STRONG,
        "AR_CI_REVIEW_TOKEN": CI_TOKEN,
        "AR_OPERATOR_TOKEN": "operator-token-" + "q" * 40,
        "LLM_API_KEY": API_KEY,
        "LLM_CHEAP_API_KEY": "cheap-api-key-123456",
        "LLM_EMBEDDING_API_KEY": "embedding-api-key-123456",
    }
    settings = load_settings(secrets).settings
    view = settings.public_view()
    for name, value in secrets.items():
        assert view[name] == "********"
        assert value not in repr(view)
    assert set(settings.secret_values()) == set(secrets.values())


def test_public_view_names_every_setting_by_environment_name() -> None:
    view = load_settings({}).settings.public_view()
    assert set(view) == {field.alias for field in Settings.model_fields.values()}
    assert view["AR_ISOLATION"] == "full"
    assert view["WEBHOOK_SECRET"] is None


def test_every_setting_has_an_alias_and_a_description() -> None:
    for name, field in Settings.model_fields.items():
        assert field.alias, name
        assert field.description, name


# Each time setting's upper bound (F59: AR_CLONE_TIMEOUT_SECS had none), in seconds.
_TIME_BOUNDS = {
    "AR_HEADER_TIMEOUT_SECS": 300,
    "AR_BODY_TIMEOUT_SECS": 600,
    "AR_DEDUP_TTL_SECS": 30 * 86400,
    "AR_READINESS_TTL_SECS": 300,
    "AR_POLL_INTERVAL_SECS": 86400,
    "AR_REVIEW_TIMEOUT_SECS": 6 * 3600,
    "AR_SHUTDOWN_GRACE_SECS": 3600,
    "AR_LLM_TIMEOUT_SECS": 3600,
    "AR_CLONE_TIMEOUT_SECS": 3600,
}


def test_every_time_setting_has_a_listed_upper_bound() -> None:
    timed = {f.alias for f in Settings.model_fields.values() if f.alias and "SECS" in f.alias}
    assert timed == set(_TIME_BOUNDS)


@pytest.mark.parametrize(("name", "bound"), sorted(_TIME_BOUNDS.items()))
def test_settings_refuse_a_time_setting_past_its_upper_bound_naming_it(
    name: str, bound: int
) -> None:
    field = next(key for key, f in Settings.model_fields.items() if f.alias == name)
    assert getattr(load_settings({name: str(bound)}).settings, field) == bound
    for typo in (str(bound + 1), str(bound * 10), "inf", "nan"):
        problems = _problems({name: typo})
        assert len(problems) == 1, (typo, problems)
        assert problems[0].startswith(f"{name}: "), (typo, problems)


def test_default_state_dir_is_var_lib_for_root_and_xdg_otherwise(tmp_path: Path) -> None:
    assert default_state_dir({}, is_root=True) == Path("/var/lib/auto-review")
    xdg = {"XDG_STATE_HOME": str(tmp_path)}
    assert default_state_dir(xdg, is_root=False) == tmp_path / "auto-review"
    home = {"HOME": "/home/op", "XDG_STATE_HOME": "relative/ignored"}
    assert default_state_dir(home, is_root=False) == Path("/home/op/.local/state/auto-review")


def test_settings_refuse_a_relative_state_dir() -> None:
    assert _problems({"AR_STATE_DIR": "state"}) == ("AR_STATE_DIR: must be an absolute path",)


@pytest.mark.parametrize(
    ("bind", "loopback"),
    [
        ("127.0.0.1:8080", True),
        ("127.8.9.1:8080", True),
        ("[::1]:8080", True),
        ("[::ffff:127.0.0.1]:8080", True),
        ("localhost:8080", True),
        ("[::ffff:10.0.0.1]:8080", False),
        ("0.0.0.0:8080", False),
        ("[::]:8080", False),
        ("gateway.example:8080", False),
    ],
)
def test_settings_tell_a_loopback_bind_also_as_an_ipv4_mapped_address(
    bind: str, loopback: bool
) -> None:
    assert load_settings({"AR_GATEWAY_BIND": bind}).settings.binds_loopback_only is loopback
