"""Settings: one boolean parser, ranges checked, every error names the variable and the fix."""

from __future__ import annotations

import pytest

from gateway.calllog.settings import StorageSettings
from gateway.settings import ROOT, Settings, SettingsError

WORDS = {"true": True, "1": True, "yes": True, "on": True, "TRUE": True, " On ": True}
WORDS |= {"false": False, "0": False, "no": False, "off": False, "Off": False}


@pytest.mark.parametrize(("word", "value"), sorted(WORDS.items()))
def test_every_boolean_reads_the_same_words(word: str, value: bool) -> None:
    settings = Settings.from_env(
        {"METRICS_PUBLIC": word, "LOG_CONTENT": word, "CALL_LOG_SYNC": word, "OFFLOAD": word, "USE_SQLITE_LOG": word}
    )
    assert settings.access.metrics_public is value
    assert settings.log_content is value and settings.storage.log_content is value
    assert settings.storage.sync is value
    assert (settings.storage.backend == "sqlite") is value


@pytest.mark.parametrize("name", ["METRICS_PUBLIC", "LOG_CONTENT", "USE_SQLITE_LOG", "CALL_LOG_SYNC", "OFFLOAD"])
def test_a_word_that_is_not_a_boolean_is_an_error_naming_the_variable(name: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: "maybe"})
    message = str(info.value)
    assert message.startswith(f"environment variable {name}='maybe': must be true/false, 1/0, yes/no or on/off")
    assert "Fix: set" in message and "\n" not in message


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"ROUTER_DEADLINE": "-5"}, "ROUTER_DEADLINE='-5': must be > 0"),
        ({"ROUTER_DEADLINE": "0"}, "ROUTER_DEADLINE='0': must be > 0"),
        ({"ROUTER_MAX_ATTEMPTS": "0"}, "ROUTER_MAX_ATTEMPTS='0': must be >= 1"),
        ({"ROUTER_QUEUE_TIMEOUT": "-1"}, "ROUTER_QUEUE_TIMEOUT='-1': must be >= 0"),
        ({"CIRCUIT_ERROR_RATE": "1.5"}, "CIRCUIT_ERROR_RATE='1.5': must be <= 1"),
        ({"CLIENT_RPM": "ten"}, "CLIENT_RPM='ten': must be a whole number"),
        ({"CLIENT_TPM": "2.5"}, "CLIENT_TPM='2.5': must be a whole number"),
        ({"MAX_BODY_BYTES": "nan"}, "MAX_BODY_BYTES='nan': must be a whole number"),
        ({"ROUTER_DEADLINE": "inf"}, "ROUTER_DEADLINE='inf': must be a finite number"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL='loud': must be one of"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml': must be one of"),
        ({"PORT": "70000"}, "PORT='70000': must be <= 65535"),
        ({"MAPS_CACHE_SECONDS": "soon"}, "MAPS_CACHE_SECONDS='soon': must be a number"),
        ({"CALL_LOG_BATCH": "0"}, "CALL_LOG_BATCH='0': must be > 0"),
    ],
)
def test_ranges_are_checked(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert fragment in str(info.value) and "Fix:" in str(info.value)


def test_defaults_and_empty_values() -> None:
    settings = Settings.from_env({"ROUTER_DEADLINE": "", "LOG_CONTENT": "  ", "CORS_ORIGINS": "a.example, ,b.example"})
    assert settings.deadline == 600.0 and settings.log_content is True
    assert settings.cors_origins == ("a.example", "b.example")
    assert settings.log_level == "INFO" and Settings.from_env({"LOG_LEVEL": "debug"}).log_level == "DEBUG"
    assert settings.server.port == 8080 and settings.maps.key == ""


def test_the_call_log_reads_the_same_words() -> None:
    assert StorageSettings.from_env({"USE_SQLITE_LOG": "off"}, ROOT).backend == "disabled"
    with pytest.raises(SettingsError, match="USE_SQLITE_LOG='maybe'"):
        StorageSettings.from_env({"USE_SQLITE_LOG": "maybe"}, ROOT)


def test_secrets_stay_out_of_reprs_and_errors() -> None:
    settings = Settings.from_env({"GOOGLE_MAPS_API_KEY": "maps-secret", "ADMIN_API_KEY": "admin-secret"})
    assert "maps-secret" not in repr(settings) and "admin-secret" not in repr(settings)
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"GATEWAY_API_KEYS": "alice:"})
    assert "GATEWAY_API_KEYS" in str(info.value) and "alice" not in str(info.value)


def test_bare_and_named_client_keys() -> None:
    policy = Settings.from_env({"GATEWAY_API_KEYS": "sk-abc123, bob:sk-bob"}).access
    names = [name for name, _ in policy.client_keys]
    assert names[0].startswith("key-") and len(names[0]) == 12 and names[1] == "bob"
    assert "sk-abc123" not in repr(policy)


def test_proxies_are_settings_too() -> None:
    proxies = Settings.from_env({"HTTPS_PROXY": "http://u:p@proxy.corp:3128", "NO_PROXY": ".internal"}).proxies
    assert proxies.for_target("https", "api.openai.com", 443) is not None
    assert proxies.for_target("https", "gpu.internal", 443) is None
    with pytest.raises(SettingsError, match=r"^environment variable HTTPS_PROXY: only http:// proxies.*Fix:"):
        Settings.from_env({"HTTPS_PROXY": "socks5://proxy:1080"})
