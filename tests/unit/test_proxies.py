"""Proxy selection against the cases of Go's golang.org/x/net/http/httpproxy tests
(proxy_test.go: proxyForURLTests, UseProxyTests, TestInvalidNoProxy, TestAllNoProxy,
TestFromEnvironment*), which kubectl inherits."""

from __future__ import annotations

import pytest

from collector.proxies import (
    ProxyEnvironment,
    describe_proxy,
    proxy_for_url,
    proxy_secrets,
    select_proxy,
    use_proxy,
)

# (HTTP_PROXY, HTTPS_PROXY, NO_PROXY, CGI, request URL, wanted proxy or None)
PROXY_FOR_URL = [
    ("127.0.0.1:8080", "", "", False, "", "http://127.0.0.1:8080"),
    ("cache.corp.example.com:1234", "", "", False, "", "http://cache.corp.example.com:1234"),
    ("cache.corp.example.com", "", "", False, "", "http://cache.corp.example.com"),
    ("localhost", "", "", False, "", "http://localhost"),
    ("https://cache.corp.example.com", "", "", False, "", "https://cache.corp.example.com"),
    ("http://127.0.0.1:8080", "", "", False, "", "http://127.0.0.1:8080"),
    ("https://127.0.0.1:8080", "", "", False, "", "https://127.0.0.1:8080"),
    ("socks5://127.0.0.1", "", "", False, "", "socks5://127.0.0.1"),
    ("foo://host", "", "", False, "", "foo://host"),
    (
        "http.proxy.tld",
        "secure.proxy.tld",
        "",
        False,
        "http://insecure.tld/",
        "http://http.proxy.tld",
    ),
    (
        "http.proxy.tld",
        "secure.proxy.tld",
        "",
        False,
        "https://secure.tld/",
        "http://secure.proxy.tld",
    ),
    (
        "http.proxy.tld",
        "https://secure.proxy.tld",
        "",
        False,
        "https://secure.tld/",
        "https://secure.proxy.tld",
    ),
    ("http.proxy.tld", "", "", False, "https://secure.tld/", None),
    ("http.proxy.tld", "", "", False, "ftp://insecure.tld/", None),
    # Go returns an error here (HTTP_PROXY in a CGI environment); no proxy either way.
    ("http://10.1.2.3:8080", "", "", True, "", None),
    ("", "https://secure.proxy.tld", "", True, "https://secure.tld/", "https://secure.proxy.tld"),
    ("", "", "", False, "", None),
    ("proxy", "", "example.com", False, "http://example.com/", None),
    ("proxy", "", ".example.com", False, "http://example.com/", "http://proxy"),
    ("proxy", "", "ample.com", False, "http://example.com/", "http://proxy"),
    ("proxy", "", "example.com", False, "http://foo.example.com/", None),
    ("proxy", "", ".foo.com", False, "http://example.com/", "http://proxy"),
    ("proxy", "", ".示例.com", False, "http://www.示例.com", None),
    ("proxy", "", "xn--fsq092h.com", False, "http://www.示例.com", None),
    ("proxy", "", "示例.com", False, "http://www.xn--fsq092h.com", None),
    ("proxy", "", "example.com", False, "http://[1000::%25.example.com]:123", "http://proxy"),
]


@pytest.mark.parametrize(
    ("env", "url", "want"),
    [(ProxyEnvironment(h, s, n, c), url, want) for h, s, n, c, url, want in PROXY_FOR_URL],
)
def test_proxy_for_url_as_go(env: ProxyEnvironment, url: str, want: str | None) -> None:
    assert proxy_for_url(url or "http://example.com", env) == want


GO_NO_PROXY = (
    "foobar.com, .barbaz.net, *.wildcard.io, 192.168.1.1, 192.168.1.2:81, 192.168.1.3:80, "
    "10.0.0.0/30, 2001:db8::52:0:1, [2001:db8::52:0:2]:443, [2001:db8::52:0:3]:80, "
    "2002:db8:a::45/64"
)

# (host as in a URL, whether a request to host:80 is proxied)
USE_PROXY = [
    ("localhost", False),
    ("127.0.0.1", False),
    ("127.0.0.2", False),
    ("[::1]", False),
    ("[::2]", True),
    ("192.168.1.1", False),
    ("192.168.1.2", True),
    ("192.168.1.3", False),
    ("192.168.1.4", True),
    ("10.0.0.2", False),
    ("[2001:db8::52:0:1]", False),
    ("[2001:db8::52:0:2]", True),
    ("[2001:db8::52:0:3]", False),
    ("[2002:db8:a::123]", False),
    ("[fe80::424b:c8be:1643:a1b6]", True),
    ("barbaz.net", True),
    ("www.barbaz.net", False),
    ("foobar.com", False),
    ("www.foobar.com", False),
    ("foofoobar.com", True),
    ("baz.com", True),
    ("localhost.net", True),
    ("local.localhost", True),
    ("barbarbaz.net", True),
    ("wildcard.io", True),
    ("nested.wildcard.io", False),
    ("awildcard.io", True),
]


def _bare(host: str) -> str:
    return host[1:-1] if host.startswith("[") else host


@pytest.mark.parametrize(("host", "proxied"), USE_PROXY)
def test_use_proxy_as_go(host: str, proxied: bool) -> None:
    assert use_proxy(_bare(host), "80", GO_NO_PROXY) is proxied


@pytest.mark.parametrize(("host", "proxied"), USE_PROXY)
def test_star_means_no_proxy_at_all(host: str, proxied: bool) -> None:
    assert use_proxy(_bare(host), "80", "*") is False


def test_malformed_no_proxy_entry_is_ignored() -> None:
    assert use_proxy("example.com", "80", ":1") is True


@pytest.mark.parametrize(
    ("environ", "want"),
    [
        (
            {"HTTP_PROXY": "httpproxy", "HTTPS_PROXY": "httpsproxy", "NO_PROXY": "noproxy"},
            ProxyEnvironment("httpproxy", "httpsproxy", "noproxy"),
        ),
        (
            {
                "HTTP_PROXY": "httpproxy",
                "HTTPS_PROXY": "httpsproxy",
                "NO_PROXY": "noproxy",
                "REQUEST_METHOD": "PUT",
            },
            ProxyEnvironment("httpproxy", "httpsproxy", "noproxy", cgi=True),
        ),
        (
            {"http_proxy": "httpproxy", "https_proxy": "httpsproxy", "no_proxy": "noproxy"},
            ProxyEnvironment("httpproxy", "httpsproxy", "noproxy"),
        ),
        (
            {"HTTPS_PROXY": "upper", "https_proxy": "lower", "no_proxy": "n"},
            ProxyEnvironment("", "upper", "n"),
        ),
    ],
)
def test_from_environment(environ: dict[str, str], want: ProxyEnvironment) -> None:
    assert ProxyEnvironment.from_environ(environ) == want


# The cases of the issue: what aiohttp's trust_env got wrong for kubectl's users.
@pytest.mark.parametrize(
    ("server", "environ", "want"),
    [
        ("https://127.0.0.1:6443", {"HTTPS_PROXY": "http://127.0.0.1:1"}, None),
        ("https://localhost:6443", {"HTTPS_PROXY": "http://127.0.0.1:1"}, None),
        ("https://[::1]:6443", {"HTTPS_PROXY": "http://127.0.0.1:1"}, None),
        (
            "https://10.1.2.3:6443",
            {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "10.1.2.3:6443"},
            None,
        ),
        (
            "https://10.1.2.3:443",
            {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "10.1.2.3:6443"},
            "http://proxy:3128",
        ),
        (
            "https://10.1.2.3:6443",
            {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "10.0.0.0/8"},
            None,
        ),
        (
            "https://api.prod.corp:6443",
            {"https_proxy": "proxy:3128", "no_proxy": ".corp"},
            None,
        ),
        (
            "https://api.prod.example:6443",
            {"https_proxy": "proxy:3128", "no_proxy": ".corp"},
            "http://proxy:3128",
        ),
        ("http://10.1.2.3:8080", {"HTTP_PROXY": "proxy:3128"}, "http://proxy:3128"),
        ("https://10.1.2.3:6443", {"HTTP_PROXY": "proxy:3128"}, None),
    ],
)
def test_select_proxy_from_environment(server: str, environ: dict[str, str], want: str) -> None:
    assert select_proxy(server, None, environ) == want


def test_cluster_proxy_url_comes_first_even_for_loopback() -> None:
    environ = {"HTTPS_PROXY": "http://env-proxy:1", "NO_PROXY": "*"}
    assert select_proxy("https://127.0.0.1:6443", "socks5://127.0.0.1:1080", environ) == (
        "socks5://127.0.0.1:1080"
    )


def test_describe_proxy_drops_credentials() -> None:
    assert describe_proxy("http://user:s3cret@proxy.corp:3128") == "http://proxy.corp:3128"
    assert describe_proxy("socks5://127.0.0.1:1080") == "socks5://127.0.0.1:1080"
    assert proxy_secrets("http://user:s3cret@proxy.corp:3128") == ("s3cret",)
    assert proxy_secrets("http://proxy.corp:3128") == ()
