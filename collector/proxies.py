"""Which proxy a request to a cluster goes through, by kubectl's rules (pure).

kubectl (client-go) uses a cluster's ``proxy-url`` when the kubeconfig sets one, and otherwise
Go's ``golang.org/x/net/http/httpproxy`` rules on the environment:

- ``HTTPS_PROXY``/``https_proxy`` for ``https://`` servers, ``HTTP_PROXY``/``http_proxy`` for
  ``http://`` ones (never in a CGI environment, where ``REQUEST_METHOD`` is set); a value
  without a scheme means ``http://``;
- ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``) are never proxied;
- ``NO_PROXY``/``no_proxy`` is a comma-separated list of ``*`` (nothing is proxied), IP
  addresses, CIDR blocks (``10.0.0.0/8``), ``host:port`` and ``[IPv6]:port`` entries, and
  domain names: ``corp.example`` matches itself and its subdomains, ``.corp.example`` and
  ``*.corp.example`` only the subdomains. Domain entries never match an IP address.

aiohttp's own ``trust_env`` differs (it proxies loopback addresses and knows neither CIDR
blocks nor ports in ``NO_PROXY``), so the transport is given the answer of
:func:`select_proxy` and does not read the environment itself.
"""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "PROXY_SCHEMES",
    "SOCKS_SCHEMES",
    "ProxyEnvironment",
    "describe_proxy",
    "parse_proxy",
    "proxy_for_url",
    "proxy_secrets",
    "select_proxy",
    "use_proxy",
]

# The schemes client-go accepts in a cluster's proxy-url.
PROXY_SCHEMES = frozenset({"http", "https", "socks5"})
SOCKS_SCHEMES = frozenset({"socks5", "socks5h"})
_DEFAULT_PORTS = {"http": "80", "https": "443", "socks5": "1080"}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class ProxyEnvironment:
    """The proxy settings of an environment, as Go's ``httpproxy.FromEnvironment`` reads them:
    the upper-case name first, then the lower-case one."""

    http_proxy: str = ""
    https_proxy: str = ""
    no_proxy: str = ""
    cgi: bool = False  # REQUEST_METHOD is set: HTTP_PROXY may be attacker-controlled

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ProxyEnvironment:
        env = os.environ if environ is None else environ

        def first(*names: str) -> str:
            return next((env[n] for n in names if env.get(n)), "")

        return cls(
            http_proxy=first("HTTP_PROXY", "http_proxy"),
            https_proxy=first("HTTPS_PROXY", "https_proxy"),
            no_proxy=first("NO_PROXY", "no_proxy"),
            cgi=bool(env.get("REQUEST_METHOD")),
        )


def parse_proxy(value: str) -> str | None:
    """A proxy setting as a URL: ``host:port`` and bare host names get ``http://``."""
    value = value.strip()
    if not value:
        return None
    parts = urllib.parse.urlsplit(value)
    if parts.scheme and parts.netloc:
        return value
    return "http://" + value


def _parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.replace("%25", "%"))
    except ValueError:
        return None


def _idna(host: str) -> str:
    if host.isascii():
        return host
    try:  # label by label: a leading dot (".corp") is an empty label, kept as it is
        return ".".join(
            label.encode("idna").decode("ascii") if label else "" for label in host.split(".")
        )
    except UnicodeError:
        return host


def _split_host_port(entry: str) -> tuple[str, str] | None:
    """Go's ``net.SplitHostPort`` for NO_PROXY entries: None when there is no port."""
    if entry.startswith("["):
        end = entry.find("]")
        if end < 0 or entry[end + 1 : end + 2] != ":":
            return None
        return entry[1:end], entry[end + 2 :]
    if entry.count(":") != 1:
        return None
    host, port = entry.split(":")
    return host, port


@dataclass(frozen=True)
class _NoProxyEntry:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None  # CIDR block
    ip: IPAddress | None = None
    domain: str = ""  # with a leading dot
    match_host: bool = False  # the domain itself matches too (entry had no leading dot)
    port: str = ""

    def matches(self, host: str, port: str, ip: IPAddress | None) -> bool:
        if self.network is not None:
            return ip is not None and ip.version == self.network.version and ip in self.network
        if self.ip is not None:
            return ip is not None and ip == self.ip and self.port in ("", port)
        if ip is not None:
            return False
        if host.endswith(self.domain) or (self.match_host and host == self.domain[1:]):
            return self.port in ("", port)
        return False


def _no_proxy_entry(raw: str) -> _NoProxyEntry | None:
    entry = raw.strip().lower()
    if not entry:
        return None
    if "/" in entry:
        try:
            return _NoProxyEntry(network=ipaddress.ip_network(entry, strict=False))
        except ValueError:
            pass
    split = _split_host_port(entry)
    host, port = split if split is not None else (entry, "")
    if not host:
        return None  # ":1" and the like: malformed, ignored as Go does
    if (ip := _parse_ip(host)) is not None:
        return _NoProxyEntry(ip=ip, port=port)
    if host.startswith("*."):
        host = host[1:]
    match_host = not host.startswith(".")
    domain = _idna(host if not match_host else "." + host)
    return _NoProxyEntry(domain=domain, match_host=match_host, port=port)


def use_proxy(host: str, port: str, no_proxy: str) -> bool:
    """Whether a request to ``host:port`` goes through the proxy under ``no_proxy``."""
    host = _idna(host.strip().lower())
    if host == "localhost":
        return False
    ip = _parse_ip(host)
    if ip is not None and ip.is_loopback:
        return False
    entries = [e for e in (_no_proxy_entry(raw) for raw in no_proxy.split(",")) if e]
    if any(raw.strip() == "*" for raw in no_proxy.split(",")):
        return False
    return not any(e.matches(host, port, ip) for e in entries)


def proxy_for_url(url: str, env: ProxyEnvironment) -> str | None:
    """The proxy URL for a request to ``url`` under ``env``, or None to connect directly."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        proxy = parse_proxy(env.https_proxy)
    elif parts.scheme == "http":
        proxy = None if env.cgi else parse_proxy(env.http_proxy)
    else:
        proxy = None
    if proxy is None:
        return None
    host = parts.hostname or ""
    try:
        port = str(parts.port) if parts.port is not None else _DEFAULT_PORTS.get(parts.scheme, "")
    except ValueError:
        port = ""
    return proxy if use_proxy(host, port, env.no_proxy) else None


def select_proxy(
    server_url: str, proxy_url: str | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """kubectl's choice for one cluster: its ``proxy-url`` when set (used for every server,
    loopback ones included), otherwise the environment's rules."""
    if proxy_url:
        return proxy_url
    return proxy_for_url(server_url, ProxyEnvironment.from_environ(environ))


def describe_proxy(proxy_url: str) -> str:
    """The proxy URL without its user name and password, fit for an error message."""
    parts = urllib.parse.urlsplit(proxy_url)
    if "@" not in parts.netloc:
        return proxy_url
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def proxy_secrets(proxy_url: str | None) -> tuple[str, ...]:
    """The password in a proxy URL (to redact), if there is one."""
    if not proxy_url:
        return ()
    parts = urllib.parse.urlsplit(proxy_url)
    password = parts.password or ""
    candidates = dict.fromkeys((password, urllib.parse.unquote(password)))
    return tuple(s for s in candidates if len(s) >= 4)
