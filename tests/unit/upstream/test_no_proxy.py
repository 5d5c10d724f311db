"""Proxies from the environment and NO_PROXY as curl reads it: pure functions, no sockets."""

from __future__ import annotations

import re

import pytest

from routing.upstream.proxy import Proxies, Proxy, bypasses, is_loopback, parse_no_proxy


def bypassed(no_proxy: str, host: str, port: int = 443) -> bool:
    return bypasses(parse_no_proxy(no_proxy), host, port)


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "expected"),
    [
        ("*", "api.openai.com", 443, True),
        (" * ", "10.1.2.3", 80, True),
        ("localhost,*", "api.openai.com", 443, False),  # as in curl: `*` is a wildcard only as the whole value
        ("example.com", "example.com", 443, True),
        ("example.com", "api.example.com", 443, True),
        ("example.com", "badexample.com", 443, False),
        (".example.com", "example.com", 443, True),  # a leading dot matches the domain itself too (curl >= 7.86)
        (".example.com", "a.b.example.com", 443, True),
        ("*.example.com", "api.example.com", 443, True),
        ("EXAMPLE.com", "Api.Example.COM.", 443, True),  # case and a trailing dot do not matter
        ("example.com:8080", "api.example.com", 8080, True),
        ("example.com:8080", "api.example.com", 443, False),
        ("localhost, 10.0.0.1", "10.0.0.1", 443, True),
        ("10.0.0.1", "10.0.0.12", 443, False),  # an IP literal is not a suffix
        ("10.0.0.0/8", "10.20.30.40", 443, True),
        ("10.0.0.0/8", "11.0.0.1", 443, False),
        ("::1", "::1", 443, True),
        ("[::1]:8443", "::1", 8443, True),
        ("[::1]:8443", "::1", 443, False),
        ("fd00::/8", "fd12::1", 443, True),
        ("1.2.3.4", "1.2.3.4.example.com", 443, False),
        (" , ,internal ", "svc.internal", 80, True),
        ("", "example.com", 443, False),
        ("other.org", "example.com", 443, False),
    ],
)
def test_no_proxy_matching(no_proxy: str, host: str, port: int, expected: bool) -> None:
    assert bypassed(no_proxy, host, port) is expected


def test_from_env_prefers_lower_case_and_reads_userinfo_as_basic_auth() -> None:
    env = {
        "HTTPS_PROXY": "http://upper:3128",
        "https_proxy": "http://us%40er:p%3Ass@lower:3128",
        "HTTP_PROXY": "plain-host",
        "NO_PROXY": "localhost,.internal",
    }
    proxies = Proxies.from_env(env)
    assert proxies.https is not None and (proxies.https.host, proxies.https.port) == ("lower", 3128)
    assert proxies.https.authorization == "Basic dXNAZXI6cDpzcw=="  # base64("us@er:p:ss")
    assert proxies.http == Proxy("plain-host", 1080)  # no scheme, no port: http:// and curl's 1080
    assert proxies.for_target("https", "api.openai.com", 443) == proxies.https
    assert proxies.for_target("http", "svc.internal", 80) is None
    assert proxies.for_target("https", "localhost", 8443) is None


def test_credentials_never_show() -> None:
    proxies = Proxies.from_env({"https_proxy": "http://alice:s3cret@proxy.corp:8080"})
    assert proxies.https is not None and proxies.https.display == "proxy.corp:8080"
    assert "s3cret" not in repr(proxies) and "alice" not in repr(proxies)


def test_no_proxy_variable_means_no_proxy_and_a_scheme_without_a_proxy_goes_direct() -> None:
    assert not Proxies.from_env({}).configured
    assert not Proxies().configured
    only_https = Proxies.from_env({"HTTPS_PROXY": "proxy:3128"})
    assert only_https.for_target("http", "example.com", 80) is None
    assert only_https.for_target("https", "example.com", 443) is not None


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("https://proxy:3128", "HTTPS_PROXY: only http:// proxies are supported, not https://"),
        ("socks5://proxy:1080", "HTTPS_PROXY: only http:// proxies are supported, not socks5://"),
        ("http://proxy:port", "HTTPS_PROXY: the proxy port is not a number"),
        ("http://:3128", "HTTPS_PROXY: the proxy URL names no host"),
    ],
)
def test_bad_proxy_urls_are_refused_naming_the_variable(value: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(fragment)):
        Proxies.from_env({"HTTPS_PROXY": value})


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST.", "gpu.localhost", "127.0.0.1", "127.8.9.10", "::1", "[::1]"]
)
def test_loopback_targets_never_take_a_proxy(host: str) -> None:
    proxies = Proxies.from_env({"https_proxy": "http://proxy.corp:3128", "http_proxy": "http://proxy.corp:3128"})
    assert is_loopback(host)
    assert proxies.for_target("http", host, 8000) is None and proxies.for_target("https", host, 443) is None
    assert proxies.for_target("https", "api.deepseek.com", 443) is not None
