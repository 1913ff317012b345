"""What one kubeconfig context means, as kubectl reads it (pure).

:mod:`collector.targets` finds and merges kubeconfig files; this module interprets the cluster
and user entries of one context, each rule one small function:

- relative paths (``certificate-authority``, ``client-certificate``, ``client-key``,
  ``tokenFile``, an exec ``command`` that names a path) are made absolute against the
  directory of the file that defined the entry, and only here;
- a ``tokenFile`` is read and inlined with its surrounding whitespace stripped (client-go's
  ``strings.TrimSpace``), and only here;
- what kubectl refuses before sending a request is a problem, quoting kubectl's message
  (client-go's ``clientcmd`` validation and ``transport.TLSConfigFor``);
- impersonation (``as``, ``as-uid``, ``as-groups``, ``as-user-extra``) becomes the
  ``Impersonate-*`` headers kubectl sends;
- which values are secret, for redaction: tokens, passwords, key data, and exec ``env``
  values whose names say so.

Files that entries reference are read through an injectable reader, so that everything here
can be tested without a disk.
"""

from __future__ import annotations

import base64
import binascii
import copy
import os
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from collector.proxies import PROXY_SCHEMES, proxy_secrets

__all__ = [
    "EXEC_API_VERSIONS",
    "Entry",
    "FileReader",
    "Interpretation",
    "auth_kind",
    "cluster_problems",
    "impersonation_headers",
    "interpret",
    "resolve_cluster",
    "resolve_user",
    "secret_values",
    "user_problems",
]

FileReader = Callable[[str], bytes]
Entry = dict[str, Any]

# client.authentication.k8s.io versions client-go still runs (v1alpha1 was removed in 1.24).
EXEC_API_VERSIONS = frozenset(
    {"client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"}
)
_INTERACTIVE_MODES = frozenset({"Never", "IfAvailable", "Always"})
_SECRET_ENV_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|KEY|CREDENTIAL", re.IGNORECASE)
_AUTH_PROVIDER_SECRET_KEYS = frozenset(
    {"id-token", "refresh-token", "client-secret", "access-token", "access_token"}
)


# --- paths -----------------------------------------------------------------------------------


def _absolute(value: Any, base_dir: str) -> Any:
    if isinstance(value, str) and value and not os.path.isabs(value):
        return os.path.normpath(os.path.join(base_dir, os.path.expanduser(value)))
    return value


def _exec_command(command: Any, base_dir: str) -> Any:
    """kubectl resolves an exec command against the kubeconfig's directory only when it names
    a path; a bare name is looked up on PATH when the plugin runs."""
    if isinstance(command, str) and os.sep in command:
        return _absolute(command, base_dir)
    return command


def resolve_cluster(entry: Mapping[str, Any], base_dir: str) -> Entry:
    cluster = copy.deepcopy(dict(entry))
    if "certificate-authority" in cluster:
        cluster["certificate-authority"] = _absolute(cluster["certificate-authority"], base_dir)
    return cluster


def resolve_user(entry: Mapping[str, Any], base_dir: str) -> Entry:
    user = copy.deepcopy(dict(entry))
    for key in ("client-certificate", "client-key", "tokenFile"):
        if key in user:
            user[key] = _absolute(user[key], base_dir)
    exec_conf = user.get("exec")
    if isinstance(exec_conf, dict):
        exec_conf["command"] = _exec_command(exec_conf.get("command"), base_dir)
    return user


# --- kubectl's refusals ----------------------------------------------------------------------


def _has(entry: Mapping[str, Any], key: str) -> bool:
    value = entry.get(key)
    return value is not None and value not in ("", [], {})


def cluster_problems(name: str, cluster: Mapping[str, Any]) -> list[str]:
    """What kubectl refuses in a cluster entry, in kubectl's words."""
    problems = []
    if not isinstance(cluster.get("server"), str) or not cluster.get("server"):
        problems.append(f"cluster {name!r} has no server")
    proxy = cluster.get("proxy-url")
    if _has(cluster, "proxy-url"):
        scheme = urllib.parse.urlsplit(str(proxy)).scheme
        if scheme not in PROXY_SCHEMES:
            problems.append(
                f'invalid \'proxy-url\' "{proxy}" for cluster "{name}": unsupported scheme '
                f'"{scheme}", must be http, https, or socks5'
            )
    has_file, has_data = (
        _has(cluster, "certificate-authority"),
        _has(cluster, "certificate-authority-data"),
    )
    if has_file and has_data:
        problems.append(
            f"certificate-authority-data and certificate-authority are both specified for "
            f"{name}. certificate-authority-data will override."
        )
    if cluster.get("insecure-skip-tls-verify") is True and (has_file or has_data):
        problems.append("specifying a root certificates file with the insecure flag is not allowed")
    return problems


def _client_cert_problems(name: str, user: Mapping[str, Any]) -> list[str]:
    if not (_has(user, "client-certificate") or _has(user, "client-certificate-data")):
        return []
    problems = []
    if _has(user, "client-certificate") and _has(user, "client-certificate-data"):
        problems.append(
            f"client-cert-data and client-cert are both specified for {name}. "
            "client-cert-data will override."
        )
    if _has(user, "client-key") and _has(user, "client-key-data"):
        problems.append(
            f"client-key-data and client-key are both specified for {name}; "
            "client-key-data will override"
        )
    if not (_has(user, "client-key") or _has(user, "client-key-data")):
        problems.append(
            f"client-key-data or client-key must be specified for {name} to use the clientCert "
            "authentication method."
        )
    return problems


def _exec_problems(name: str, user: Mapping[str, Any]) -> list[str]:
    spec = user.get("exec")
    if not isinstance(spec, Mapping):
        return []
    problems = []
    if _has(user, "auth-provider"):
        problems.append(
            f"authProvider cannot be provided in combination with an exec plugin for {name}"
        )
    if not _has(spec, "command"):
        problems.append(f"command must be specified for {name} to use exec authentication plugin")
    version = spec.get("apiVersion")
    if not version:
        problems.append(
            f"apiVersion must be specified for {name} to use exec authentication plugin"
        )
    if any(isinstance(e, Mapping) and not e.get("name") for e in spec.get("env") or ()):
        problems.append(
            f"env variable name must be specified for {name} to use exec authentication plugin"
        )
    problems.extend(_interactive_mode_problems(name, spec))
    if version and version not in EXEC_API_VERSIONS:
        problems.append(f'exec plugin: invalid apiVersion "{version}"')
    return problems


def _interactive_mode_problems(name: str, spec: Mapping[str, Any]) -> list[str]:
    mode = spec.get("interactiveMode")
    # Decoding v1beta1 defaults an absent interactiveMode to IfAvailable; v1 has no default.
    if not mode and spec.get("apiVersion") != "client.authentication.k8s.io/v1beta1":
        return [f"interactiveMode must be specified for {name} to use exec authentication plugin"]
    if mode and mode not in _INTERACTIVE_MODES:
        return [f'invalid interactiveMode for {name}: "{mode}"']
    return []


def _auth_method_problems(name: str, user: Mapping[str, Any]) -> list[str]:
    methods = []
    if _has(user, "token"):
        methods.append("token")
    if _has(user, "username") or _has(user, "password"):
        methods.append("basicAuth")
    if len(methods) > 1:
        return [
            f"more than one authentication method found for {name}; found "
            f"[{' '.join(methods)}], only one is allowed"
        ]
    return []


def _impersonation_problems(name: str, user: Mapping[str, Any]) -> list[str]:
    extras = any(_has(user, k) for k in ("as-uid", "as-groups", "as-user-extra"))
    if extras and not _has(user, "as"):
        return [f"requesting uid, groups or user-extra for {name} without impersonating a user"]
    return []


def user_problems(name: str, user: Mapping[str, Any]) -> list[str]:
    """What kubectl refuses in a user entry, in kubectl's words."""
    return [
        *_auth_method_problems(name, user),
        *_client_cert_problems(name, user),
        *_exec_problems(name, user),
        *_impersonation_problems(name, user),
    ]


# --- referenced files ------------------------------------------------------------------------


def _b64decode(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        return None


def _unreadable(key: str, path: str, owner: str, exc: OSError) -> str:
    return f"unable to read {key} {path} for {owner} due to {exc.strerror or exc}"


def read_ca(
    name: str, cluster: Mapping[str, Any], read_file: FileReader
) -> tuple[bytes | None, list[str]]:
    """The CA certificate's content (data first, as client-go), or the problem reading it."""
    if _has(cluster, "certificate-authority-data"):
        data = _b64decode(cluster["certificate-authority-data"])
        return data, [] if data is not None else ["certificate-authority-data is not valid base64"]
    path = cluster.get("certificate-authority")
    if isinstance(path, str) and path:
        try:
            return read_file(path), []
        except OSError as exc:
            return None, [_unreadable("certificate-authority", path, name, exc)]
    return None, []


def read_client_files(
    name: str, user: Mapping[str, Any], read_file: FileReader
) -> tuple[list[str], list[str]]:
    """(secrets, problems): the client key's content, and the files that cannot be read."""
    secrets: list[str] = []
    problems: list[str] = []
    for key, label in (("client-certificate", "client-cert"), ("client-key", "client-key")):
        path = user.get(key)
        if not isinstance(path, str) or not path:
            continue
        try:
            content = read_file(path)
        except OSError as exc:
            problems.append(_unreadable(label, path, name, exc))
            continue
        if key == "client-key":
            secrets.append(content.decode("utf-8", "replace"))
    return secrets, problems


def inline_token_file(user: Entry, read_file: FileReader) -> list[str]:
    """Read a ``tokenFile`` into ``token`` with its whitespace stripped, as client-go does (the
    only place kubeinv strips it); returns the problems. An inline token wins over the file."""
    token_file = user.get("tokenFile")
    if not isinstance(token_file, str) or not token_file:
        return []
    if not user.get("token"):
        try:
            token = read_file(token_file).decode("utf-8", "replace").strip()
        except OSError as exc:
            return [f"tokenFile {token_file}: {exc.strerror or exc}"]
        if not token:
            return [f"tokenFile {token_file} is empty"]
        user["token"] = token
    del user["tokenFile"]
    return []


# --- what the user entry says ----------------------------------------------------------------


# The first kind whose keys the user entry sets wins, in this order.
_AUTH_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("exec", ("exec",)),
    ("auth-provider", ("auth-provider",)),
    ("client-certificate", ("client-certificate", "client-certificate-data")),
    ("token", ("token",)),
    ("token-file", ("tokenFile",)),
    ("basic", ("username", "password")),
)


def auth_kind(user: Mapping[str, Any]) -> str:
    """client-certificate | token | token-file | exec | auth-provider | basic | none."""
    for kind, keys in _AUTH_KINDS:
        if any(user.get(key) for key in keys):
            return kind
    return "none"


_HEADER_KEY_LEGAL = frozenset(
    "!#$&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _header_key_escape(key: str) -> str:
    """client-go's ``headerKeyEscape``: bytes not legal in a header name become ``%XX``."""
    return "".join(
        chr(b) if chr(b) in _HEADER_KEY_LEGAL else f"%{b:02X}" for b in key.encode("utf-8")
    )


def impersonation_headers(user: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The ``Impersonate-*`` headers kubectl sends for this user entry (groups repeat)."""
    headers: list[tuple[str, str]] = []
    if _has(user, "as"):
        headers.append(("Impersonate-User", str(user["as"])))
    if _has(user, "as-uid"):
        headers.append(("Impersonate-Uid", str(user["as-uid"])))
    for group in user.get("as-groups") or ():
        headers.append(("Impersonate-Group", str(group)))
    extra = user.get("as-user-extra")
    if isinstance(extra, Mapping):
        for key in sorted(extra):
            values = extra[key]
            for value in [values] if isinstance(values, str) else values or ():
                headers.append((f"Impersonate-Extra-{_header_key_escape(str(key))}", str(value)))
    return tuple(headers)


def _exec_env_secrets(user: Mapping[str, Any]) -> list[Any]:
    spec = user.get("exec")
    env = spec.get("env") if isinstance(spec, Mapping) else None
    return [
        e.get("value")
        for e in env or ()
        if isinstance(e, Mapping) and _SECRET_ENV_NAME.search(str(e.get("name", "")))
    ]


def _auth_provider_secrets(user: Mapping[str, Any]) -> list[Any]:
    provider = user.get("auth-provider")
    config = provider.get("config") if isinstance(provider, Mapping) else None
    if not isinstance(config, Mapping):
        return []
    return [value for key, value in config.items() if key in _AUTH_PROVIDER_SECRET_KEYS]


def secret_values(user: Mapping[str, Any], extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The user entry's secret strings, whole: tokens, passwords, key data (encoded and
    decoded), auth-provider tokens, and exec env values whose names contain TOKEN, SECRET,
    PASSWORD, KEY or CREDENTIAL. Other env values (``AWS_PROFILE=default``) are not secret."""
    decoded_key = _b64decode(user.get("client-key-data"))
    candidates = [
        user.get("token"),
        user.get("password"),
        user.get("client-key-data"),
        decoded_key.decode("utf-8", "replace").strip() if decoded_key is not None else None,
        *_exec_env_secrets(user),
        *_auth_provider_secrets(user),
        *extra,
    ]
    return tuple(dict.fromkeys(v for v in candidates if isinstance(v, str) and v))


# --- one context -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Interpretation:
    """One context's cluster and user, resolved, with what kubectl would refuse."""

    cluster: Entry | None  # None: not defined
    user: Entry | None  # its tokenFile inlined
    problems: tuple[str, ...]
    auth_kind: str  # of the user entry as written ("token-file" before it is inlined)
    ca_bytes: bytes | None
    file_secrets: tuple[str, ...]  # read from the files the user entry names (client key)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret string of the context, for redaction (see :func:`secret_values`)."""
        return secret_values(self.user or {}, [*self.file_secrets, *proxy_secrets(self.proxy_url)])

    @property
    def impersonation(self) -> tuple[tuple[str, str], ...]:
        return impersonation_headers(self.user or {})

    @property
    def server(self) -> str | None:
        server = (self.cluster or {}).get("server")
        return server if isinstance(server, str) and server else None

    @property
    def proxy_url(self) -> str | None:
        proxy = (self.cluster or {}).get("proxy-url")
        return proxy if isinstance(proxy, str) and proxy else None


def _lookup(
    kind: str, name: Any, entries: Mapping[str, tuple[Mapping[str, Any], str]]
) -> tuple[Mapping[str, Any], str] | str:
    """(entry, defining dir), or the problem."""
    if not isinstance(name, str) or not name:
        return f"the context names no {kind}"
    if name not in entries:
        return f"{kind} {name!r} is not defined"
    return entries[name]


def _interpret_cluster(
    name: str, found: tuple[Mapping[str, Any], str], read_file: FileReader
) -> tuple[Entry, bytes | None, list[str]]:
    cluster = resolve_cluster(*found)
    problems = cluster_problems(name, cluster)
    ca_bytes, ca_problems = read_ca(name, cluster, read_file)
    return cluster, ca_bytes, problems + ca_problems


def _interpret_user(
    name: str, found: tuple[Mapping[str, Any], str], read_file: FileReader
) -> tuple[Entry, str, list[str], list[str]]:
    """(user with its token file inlined, auth kind, secrets from files, problems)."""
    user = resolve_user(*found)
    kind = auth_kind(user)
    problems = user_problems(name, user)
    key_secrets, file_problems = read_client_files(name, user, read_file)
    problems += file_problems + inline_token_file(user, read_file)
    return user, kind, key_secrets, problems


def interpret(
    context: Mapping[str, Any],
    *,
    clusters: Mapping[str, tuple[Mapping[str, Any], str]],
    users: Mapping[str, tuple[Mapping[str, Any], str]],
    read_file: FileReader,
) -> Interpretation:
    """One context's meaning. ``clusters``/``users`` map names to (entry, defining dir)."""
    problems: list[str] = []
    cluster = user = None
    ca_bytes = None
    kind = "none"
    file_secrets: list[str] = []
    found_cluster = _lookup("cluster", context.get("cluster"), clusters)
    if isinstance(found_cluster, str):
        problems.append(found_cluster)
    else:
        cluster, ca_bytes, more = _interpret_cluster(context["cluster"], found_cluster, read_file)
        problems += more
    found_user = _lookup("user", context.get("user"), users)
    if isinstance(found_user, str):
        problems.append(found_user)
    else:
        user, kind, file_secrets, more = _interpret_user(context["user"], found_user, read_file)
        problems += more
    return Interpretation(
        cluster=cluster,
        user=user,
        problems=tuple(problems),
        auth_kind=kind,
        ca_bytes=ca_bytes,
        file_secrets=tuple(file_secrets),
    )
