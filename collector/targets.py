"""Kubeconfig files -> targets: one :class:`Target` per (kubeconfig file, context).

Which files are read (DESIGN.md, "Which kubeconfigs are read"):

1. paths given explicitly (flags or configuration): each file stands alone, a directory means
   its files, a glob its matches. Two files naming their contexts alike give two targets.
2. otherwise ``KUBECONFIG``, merged as kubectl merges it: on a duplicate context, cluster or user
   name the first file wins, ``current-context`` comes from the first file that sets it, empty
   entries and missing files are ignored;
3. otherwise ``~/.kube/config``.

Parsing is pure: :func:`targets_from_config` turns one loaded document into targets; files it
references (token files, client keys, CA files) are read through an injectable reader. Loading
is thin: :func:`load_targets` only finds files, ``yaml.safe_load``\\ s them and delegates.

Relative paths (``certificate-authority``, ``client-certificate``, ``client-key``,
``tokenFile``, an exec ``command`` containing a ``/``) are made absolute against the directory
of the file that defined the entry, as kubectl resolves them. A token file is read and inlined
with surrounding whitespace (its trailing newline) stripped, as kubectl does (kubernetes-asyncio
36.x would send the newline). A context whose cluster or user is missing is a target with
``problem`` set: it is never collected, never falls back to ``localhost:8080`` and never prompts
for a password.
"""

from __future__ import annotations

import base64
import binascii
import copy
import fnmatch
import glob
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from collector.errors import KubeconfigError

__all__ = [
    "IN_CLUSTER_CONTEXT",
    "IN_CLUSTER_PATH",
    "SERVICE_ACCOUNT_DIR",
    "Target",
    "TargetSet",
    "describe_target",
    "expand_paths",
    "filter_targets",
    "in_cluster_target",
    "load_kubeconfig_file",
    "load_targets",
    "merge_kubeconfigs",
    "targets_from_config",
]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
IN_CLUSTER_PATH = "<in-cluster>"
IN_CLUSTER_CONTEXT = "in-cluster"

FileReader = Callable[[str], bytes]

_AUTH_PROVIDER_SECRET_KEYS = frozenset(
    {"id-token", "refresh-token", "client-secret", "access-token", "access_token"}
)


@dataclass(frozen=True)
class Target:
    kubeconfig_path: str  # absolute path of the file the context came from
    context_name: str
    cluster_name: str | None
    user_name: str | None
    server_url: str | None
    auth_kind: str  # client-certificate | token | token-file | exec | auth-provider | basic | none
    insecure_skip_tls_verify: bool
    # Self-contained kubeconfig holding exactly this context, its cluster and its user, with
    # current-context set to it and every file path absolute.
    config: Mapping[str, Any] = field(repr=False)
    problem: str | None  # broken target: never collected, no network
    secrets: tuple[str, ...] = field(default=(), repr=False)  # exact secret strings
    ca_bytes: bytes | None = field(default=None, repr=False)  # CA certificate content
    is_current: bool = False  # the current-context of its file (or of the merged KUBECONFIG)

    @property
    def broken(self) -> bool:
        return self.problem is not None


@dataclass(frozen=True)
class TargetSet:
    targets: list[Target]
    errors: list[KubeconfigError]  # unreadable/malformed files; each names its file
    source: str = "explicit"  # explicit | KUBECONFIG | default | in-cluster | none
    files: tuple[str, ...] = ()  # the files that were read


# --- pure parsing --------------------------------------------------------------------------


def _read_file(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _named_entries(doc: Mapping[str, Any], key: str, payload: str) -> dict[str, dict[str, Any]]:
    """``clusters``/``users``/``contexts`` as name -> entry; later duplicates win within a
    file, as in client-go's conversion. Malformed entries are left out."""
    entries: dict[str, dict[str, Any]] = {}
    items = doc.get(key)
    if not isinstance(items, list):
        return entries
    for item in items:
        if not isinstance(item, Mapping):
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name:
            continue
        body = item.get(payload)
        entries[name] = dict(body) if isinstance(body, Mapping) else {}
    return entries


def _absolute(value: Any, base_dir: str) -> Any:
    if isinstance(value, str) and value and not os.path.isabs(value):
        return os.path.normpath(os.path.join(base_dir, os.path.expanduser(value)))
    return value


def _resolve_cluster_paths(cluster: dict[str, Any], base_dir: str) -> dict[str, Any]:
    cluster = copy.deepcopy(cluster)
    if "certificate-authority" in cluster:
        cluster["certificate-authority"] = _absolute(cluster["certificate-authority"], base_dir)
    return cluster


def _resolve_user_paths(user: dict[str, Any], base_dir: str) -> dict[str, Any]:
    user = copy.deepcopy(user)
    for key in ("client-certificate", "client-key", "tokenFile"):
        if key in user:
            user[key] = _absolute(user[key], base_dir)
    exec_conf = user.get("exec")
    if isinstance(exec_conf, dict):
        command = exec_conf.get("command")
        # kubectl resolves an exec command against the kubeconfig's directory only when it
        # names a path; a bare name is looked up on PATH.
        if isinstance(command, str) and "/" in command:
            exec_conf["command"] = _absolute(command, base_dir)
    return user


def _auth_kind(user: Mapping[str, Any]) -> str:
    if user.get("exec"):
        return "exec"
    if user.get("auth-provider"):
        return "auth-provider"
    if user.get("client-certificate") or user.get("client-certificate-data"):
        return "client-certificate"
    if user.get("token"):
        return "token"
    if user.get("tokenFile"):
        return "token-file"
    if user.get("username") or user.get("password"):
        return "basic"
    return "none"


def _b64decode(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        return None


def _collect_secrets(user: Mapping[str, Any], extra: Iterable[str]) -> tuple[str, ...]:
    found: list[str] = []

    def add(value: Any) -> None:
        if isinstance(value, str) and value and value not in found:
            found.append(value)

    add(user.get("token"))
    add(user.get("password"))
    key_data = user.get("client-key-data")
    add(key_data)
    if (decoded := _b64decode(key_data)) is not None:
        add(decoded.decode("utf-8", "replace").strip())
    exec_conf = user.get("exec")
    if isinstance(exec_conf, Mapping):
        for env in exec_conf.get("env") or ():
            if isinstance(env, Mapping):
                add(env.get("value"))
    provider = user.get("auth-provider")
    if isinstance(provider, Mapping) and isinstance(provider.get("config"), Mapping):
        for key, value in provider["config"].items():
            if key in _AUTH_PROVIDER_SECRET_KEYS:
                add(value)
    for value in extra:
        add(value)
    return tuple(found)


def _build_target(
    *,
    path: str,
    context_name: str,
    context: Mapping[str, Any],
    clusters: Mapping[str, tuple[dict[str, Any], str]],
    users: Mapping[str, tuple[dict[str, Any], str]],
    current: bool,
    read_file: FileReader,
) -> Target:
    """One context -> one Target. ``clusters``/``users`` map names to (entry, defining dir)."""
    where = f"file {path}, context {context_name!r}"
    cluster_name = context.get("cluster") if isinstance(context.get("cluster"), str) else None
    user_name = context.get("user") if isinstance(context.get("user"), str) else None
    problems: list[str] = []
    cluster: dict[str, Any] = {}
    user: dict[str, Any] = {}
    cluster_found = user_found = False
    if not cluster_name:
        problems.append("the context names no cluster")
    elif cluster_name not in clusters:
        problems.append(f"cluster {cluster_name!r} is not defined")
    else:
        entry, base_dir = clusters[cluster_name]
        cluster = _resolve_cluster_paths(entry, base_dir)
        cluster_found = True
    if not user_name:
        problems.append("the context names no user")
    elif user_name not in users:
        problems.append(f"user {user_name!r} is not defined")
    else:
        entry, base_dir = users[user_name]
        user = _resolve_user_paths(entry, base_dir)
        user_found = True

    server = cluster.get("server") if isinstance(cluster.get("server"), str) else None
    if cluster_found and not server:
        problems.append(f"cluster {cluster_name!r} has no server")

    extra_secrets: list[str] = []
    ca_bytes: bytes | None = None
    if cluster:
        if cluster.get("certificate-authority-data"):
            ca_bytes = _b64decode(cluster["certificate-authority-data"])
            if ca_bytes is None:
                problems.append("certificate-authority-data is not valid base64")
        elif isinstance(cluster.get("certificate-authority"), str):
            try:
                ca_bytes = read_file(cluster["certificate-authority"])
            except OSError as exc:
                problems.append(
                    f"certificate-authority {cluster['certificate-authority']}: "
                    f"{exc.strerror or exc}"
                )
    auth_kind = _auth_kind(user) if user else "none"
    if user:
        has_cert = user.get("client-certificate") or user.get("client-certificate-data")
        if has_cert and not (user.get("client-key") or user.get("client-key-data")):
            problems.append("client certificate without client key")
        if isinstance(user.get("client-key"), str):
            try:
                extra_secrets.append(read_file(user["client-key"]).decode("utf-8", "replace"))
            except OSError as exc:
                problems.append(f"client-key {user['client-key']}: {exc.strerror or exc}")
        token_file = user.get("tokenFile")
        if isinstance(token_file, str) and token_file and not user.get("token"):
            try:
                # client-go trims surrounding whitespace (strings.TrimSpace) from token files.
                token = read_file(token_file).decode("utf-8", "replace").strip()
            except OSError as exc:
                problems.append(f"tokenFile {token_file}: {exc.strerror or exc}")
            else:
                if token:
                    # Inlined so that the client sends it without the trailing newline, as
                    # kubectl does (kubernetes-asyncio 36.x would send the file verbatim).
                    user["token"] = token
                else:
                    problems.append(f"tokenFile {token_file} is empty")
        if user.get("token"):
            user.pop("tokenFile", None)

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": cluster}] if cluster_found else [],
        "users": [{"name": user_name, "user": user}] if user_found else [],
        "contexts": [{"name": context_name, "context": dict(context)}],
        "current-context": context_name,
        "preferences": {},
    }
    return Target(
        kubeconfig_path=path,
        context_name=context_name,
        cluster_name=cluster_name,
        user_name=user_name,
        server_url=server,
        auth_kind=auth_kind,
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify")),
        config=config,
        problem=f"{where}: {'; '.join(problems)}" if problems else None,
        secrets=_collect_secrets(user, extra_secrets),
        ca_bytes=ca_bytes,
        is_current=current,
    )


def _check_document(doc: Any, path: str) -> Mapping[str, Any]:
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise KubeconfigError(f"not a kubeconfig (top level is a {type(doc).__name__})", path=path)
    kind = doc.get("kind")
    if kind not in (None, "", "Config"):
        raise KubeconfigError(f"not a kubeconfig (kind {kind!r})", path=path)
    for key in ("clusters", "users", "contexts"):
        if doc.get(key) is not None and not isinstance(doc.get(key), list):
            raise KubeconfigError(f"{key} is not a list", path=path)
    return doc


def targets_from_config(
    doc: Mapping[str, Any], *, path: str, read_file: FileReader = _read_file
) -> list[Target]:
    """All targets of one standalone kubeconfig document, sorted by context name.

    ``path`` is the absolute path of the file (relative paths inside are resolved against its
    directory). Files the document references are read with ``read_file``.
    """
    doc = _check_document(doc, path)
    base_dir = os.path.dirname(path)
    clusters = {n: (e, base_dir) for n, e in _named_entries(doc, "clusters", "cluster").items()}
    users = {n: (e, base_dir) for n, e in _named_entries(doc, "users", "user").items()}
    contexts = _named_entries(doc, "contexts", "context")
    current = doc.get("current-context")
    return [
        _build_target(
            path=path,
            context_name=name,
            context=contexts[name],
            clusters=clusters,
            users=users,
            current=name == current,
            read_file=read_file,
        )
        for name in sorted(contexts)
    ]


@dataclass(frozen=True)
class _Merged:
    contexts: dict[str, tuple[dict[str, Any], str]]  # name -> (entry, defining file)
    clusters: dict[str, tuple[dict[str, Any], str]]  # name -> (entry, defining dir)
    users: dict[str, tuple[dict[str, Any], str]]
    current_context: str | None


def merge_kubeconfigs(docs: Sequence[tuple[str, Mapping[str, Any]]]) -> _Merged:
    """Merge (path, document) pairs as kubectl merges ``KUBECONFIG`` (pure).

    The first file that defines a name wins; ``current-context`` comes from the first file
    that sets it. Each entry remembers the file that defined it, for path resolution.
    """
    contexts: dict[str, tuple[dict[str, Any], str]] = {}
    clusters: dict[str, tuple[dict[str, Any], str]] = {}
    users: dict[str, tuple[dict[str, Any], str]] = {}
    current: str | None = None
    for path, doc in docs:
        base_dir = os.path.dirname(path)
        for name, entry in _named_entries(doc, "contexts", "context").items():
            contexts.setdefault(name, (entry, path))
        for name, entry in _named_entries(doc, "clusters", "cluster").items():
            clusters.setdefault(name, (entry, base_dir))
        for name, entry in _named_entries(doc, "users", "user").items():
            users.setdefault(name, (entry, base_dir))
        value = doc.get("current-context")
        if current is None and isinstance(value, str) and value:
            current = value
    return _Merged(contexts=contexts, clusters=clusters, users=users, current_context=current)


def targets_from_merged(merged: _Merged, *, read_file: FileReader = _read_file) -> list[Target]:
    """Targets of a merged KUBECONFIG, sorted by context name (as kubectl get-contexts)."""
    return [
        _build_target(
            path=merged.contexts[name][1],
            context_name=name,
            context=merged.contexts[name][0],
            clusters=merged.clusters,
            users=merged.users,
            current=name == merged.current_context,
            read_file=read_file,
        )
        for name in sorted(merged.contexts)
    ]


def filter_targets(
    targets: Iterable[Target], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[Target]:
    """Keep contexts matching any ``include`` glob (all when none), minus any ``exclude``."""
    return [
        t
        for t in targets
        if (not include or any(fnmatch.fnmatchcase(t.context_name, g) for g in include))
        and not any(fnmatch.fnmatchcase(t.context_name, g) for g in exclude)
    ]


def describe_target(target: Target) -> dict[str, Any]:
    """What ``kubeinv contexts`` shows for a target (no secrets)."""
    return {
        "file": target.kubeconfig_path,
        "context": target.context_name,
        "current": target.is_current,
        "cluster": target.cluster_name,
        "user": target.user_name,
        "server": target.server_url,
        "auth": target.auth_kind,
        "insecure_skip_tls_verify": target.insecure_skip_tls_verify,
        "problem": target.problem,
    }


# --- thin file loading ---------------------------------------------------------------------


def load_kubeconfig_file(path: str) -> Mapping[str, Any]:
    """Read and YAML-parse one kubeconfig; KubeconfigError (naming the file) if unusable."""
    try:
        with open(path, "rb") as handle:
            text = handle.read()
    except OSError as exc:
        raise KubeconfigError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise KubeconfigError(
            f"invalid YAML{at}: {getattr(exc, 'problem', exc)}", path=path
        ) from exc
    return _check_document(doc, path)


_GLOB_CHARS = frozenset("*?[")


def expand_paths(paths: Sequence[str]) -> tuple[list[str], list[KubeconfigError]]:
    """Explicit paths -> absolute kubeconfig files: a directory gives its (non-hidden) files,
    a glob its matches. Paths that match nothing are errors. Duplicates are read once."""
    files: list[str] = []
    errors: list[KubeconfigError] = []
    seen: set[str] = set()

    def add(candidate: str) -> None:
        absolute = os.path.abspath(candidate)
        if absolute not in seen:
            seen.add(absolute)
            files.append(absolute)

    for raw in paths:
        path = os.path.expanduser(raw)
        if any(ch in path for ch in _GLOB_CHARS) and not os.path.exists(path):
            matches = sorted(glob.glob(path))
            if not matches:
                errors.append(KubeconfigError("no file matches this pattern", path=raw))
            for match in matches:
                if os.path.isdir(match):
                    for name in sorted(os.listdir(match)):
                        full = os.path.join(match, name)
                        if not name.startswith(".") and os.path.isfile(full):
                            add(full)
                elif os.path.isfile(match):
                    add(match)
        elif os.path.isdir(path):
            names = sorted(
                n
                for n in os.listdir(path)
                if not n.startswith(".") and os.path.isfile(os.path.join(path, n))
            )
            if not names:
                errors.append(KubeconfigError("directory holds no kubeconfig file", path=raw))
            for name in names:
                add(os.path.join(path, name))
        elif os.path.exists(path):
            add(path)
        else:
            errors.append(KubeconfigError("no such file or directory", path=raw))
    return files, errors


def load_targets(
    paths: Sequence[str],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> TargetSet:
    """Find, read and parse the kubeconfigs, with DESIGN.md's precedence, then filter."""
    environ = os.environ if environ is None else environ
    errors: list[KubeconfigError] = []
    targets: list[Target] = []
    if paths:
        files, errors = expand_paths(paths)
        for path in files:
            try:
                doc = load_kubeconfig_file(path)
            except KubeconfigError as exc:
                errors.append(exc)
                continue
            if not _named_entries(doc, "contexts", "context"):
                errors.append(KubeconfigError("defines no context", path=path))
                continue
            targets.extend(targets_from_config(doc, path=path))
        source = "explicit"
    elif environ.get("KUBECONFIG"):
        files = []
        docs: list[tuple[str, Mapping[str, Any]]] = []
        for entry in environ["KUBECONFIG"].split(os.pathsep):
            if not entry:
                continue  # kubectl ignores empty entries
            path = os.path.abspath(os.path.expanduser(entry))
            if path in files:
                continue
            if not os.path.exists(path):
                continue  # kubectl ignores missing files in KUBECONFIG
            files.append(path)
            try:
                docs.append((path, load_kubeconfig_file(path)))
            except KubeconfigError as exc:
                errors.append(exc)
        targets = targets_from_merged(merge_kubeconfigs(docs))
        source = "KUBECONFIG"
    else:
        home_dir = home if home is not None else Path.home()
        default = home_dir / ".kube" / "config"
        files = []
        source = "default"
        if default.exists():
            path = str(default.absolute())
            files.append(path)
            try:
                targets = targets_from_config(load_kubeconfig_file(path), path=path)
            except KubeconfigError as exc:
                errors.append(exc)
        else:
            source = "none"
    return TargetSet(
        targets=filter_targets(targets, include, exclude),
        errors=errors,
        source=source,
        files=tuple(files),
    )


def in_cluster_target(
    environ: Mapping[str, str] | None = None,
    sa_dir: Path = SERVICE_ACCOUNT_DIR,
    *,
    read_file: FileReader = _read_file,
) -> Target | None:
    """The pod's own service account as a target, or None when not running in a cluster."""
    environ = os.environ if environ is None else environ
    host = environ.get("KUBERNETES_SERVICE_HOST")
    port = environ.get("KUBERNETES_SERVICE_PORT")
    token_path = sa_dir / "token"
    if not host or not port or not token_path.exists():
        return None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    server = f"https://{host}:{port}"
    problems: list[str] = []
    token = ""
    try:
        token = read_file(str(token_path)).decode("utf-8", "replace").strip()
    except OSError as exc:
        problems.append(f"cannot read {token_path}: {exc.strerror or exc}")
    ca_path = sa_dir / "ca.crt"
    ca_bytes: bytes | None = None
    try:
        ca_bytes = read_file(str(ca_path))
    except OSError as exc:
        problems.append(f"cannot read {ca_path}: {exc.strerror or exc}")
    if not token and not problems:
        problems.append(f"{token_path} is empty")
    cluster: dict[str, Any] = {"server": server}
    if ca_bytes is not None:
        cluster["certificate-authority"] = str(ca_path)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": IN_CLUSTER_CONTEXT, "cluster": cluster}],
        "users": [{"name": IN_CLUSTER_CONTEXT, "user": {"token": token}}],
        "contexts": [
            {
                "name": IN_CLUSTER_CONTEXT,
                "context": {"cluster": IN_CLUSTER_CONTEXT, "user": IN_CLUSTER_CONTEXT},
            }
        ],
        "current-context": IN_CLUSTER_CONTEXT,
        "preferences": {},
    }
    return Target(
        kubeconfig_path=IN_CLUSTER_PATH,
        context_name=IN_CLUSTER_CONTEXT,
        cluster_name=IN_CLUSTER_CONTEXT,
        user_name=IN_CLUSTER_CONTEXT,
        server_url=server,
        auth_kind="token-file",
        insecure_skip_tls_verify=False,
        config=config,
        problem=(
            f"in-cluster service account ({sa_dir}): {'; '.join(problems)}" if problems else None
        ),
        secrets=(token,) if token else (),
        ca_bytes=ca_bytes,
        is_current=True,
    )
