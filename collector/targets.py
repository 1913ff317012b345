"""Kubeconfig files -> targets: one :class:`Target` per (kubeconfig file, context).

Which files are read:

1. paths given explicitly (flags or configuration): each file stands alone, a directory means
   its files, a glob its matches. Two files naming their contexts alike give two targets.
2. otherwise ``KUBECONFIG``, merged as kubectl merges it: on a duplicate context, cluster or user
   name the first file wins, ``current-context`` comes from the first file that sets it, empty
   entries and missing files are ignored;
3. otherwise ``~/.kube/config``.

Parsing is pure: :func:`targets_from_config` turns one loaded document into targets; files it
references (token files, client keys, CA files) are read through an injectable reader. Loading
is thin: :func:`load_targets` only finds files, parses them (libyaml's safe loader when
available) and delegates.

What one context's entries mean (paths, token files, kubectl's refusals, impersonation,
secrets) is :mod:`collector.kubeconfig`'s; each entry is resolved against the directory of the
file that defined it. A context whose cluster or user is missing, or that kubectl would refuse,
is a target with ``problem`` set: it is never collected, never falls back to
``localhost:8080`` and never prompts for a password.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from collector.errors import KubeconfigError
from collector.kubeconfig import FileReader, Interpretation, interpret

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

# libyaml's loader where PyYAML was built with it: ~12x faster than the pure-Python one, which
# took ~0.4 s for 650 KB of kubeconfig (300 contexts with certificate data).
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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
    proxy_url: str | None = field(default=None, repr=False)  # the cluster's proxy-url
    # Impersonate-* headers of the user's as/as-uid/as-groups/as-user-extra (groups repeat).
    impersonation: tuple[tuple[str, str], ...] = ()

    @property
    def user_entry(self) -> Mapping[str, Any]:
        """The context's user entry, paths absolute and a token file inlined ({} if none)."""
        users = self.config.get("users") or []
        return users[0]["user"] if users else {}

    @property
    def cluster_entry(self) -> Mapping[str, Any]:
        """The context's cluster entry, paths absolute ({} if none)."""
        clusters = self.config.get("clusters") or []
        return clusters[0]["cluster"] if clusters else {}

    @property
    def broken(self) -> bool:
        return self.problem is not None


@dataclass(frozen=True)
class TargetSet:
    targets: list[Target]
    errors: list[KubeconfigError]  # unreadable/malformed files; each names its file
    source: str = "explicit"  # explicit | KUBECONFIG | default | in-cluster | none
    files: tuple[str, ...] = ()  # the files that were read
    # Contexts the files define that --context / --exclude-context leave out: still configured.
    filtered_out: list[Target] = field(default_factory=list)


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


def _standalone_config(
    context_name: str, context: Mapping[str, Any], meaning: Interpretation
) -> dict[str, Any]:
    """A kubeconfig holding exactly this context, its cluster and its user."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": (
            [{"name": context["cluster"], "cluster": meaning.cluster}] if meaning.cluster else []
        ),
        "users": [{"name": context["user"], "user": meaning.user}] if meaning.user else [],
        "contexts": [{"name": context_name, "context": dict(context)}],
        "current-context": context_name,
        "preferences": {},
    }


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
    meaning = interpret(context, clusters=clusters, users=users, read_file=read_file)
    problem = "; ".join(meaning.problems)
    return Target(
        kubeconfig_path=path,
        context_name=context_name,
        cluster_name=_name(context.get("cluster")),
        user_name=_name(context.get("user")),
        server_url=meaning.server,
        auth_kind=meaning.auth_kind,
        insecure_skip_tls_verify=bool((meaning.cluster or {}).get("insecure-skip-tls-verify")),
        config=_standalone_config(context_name, context, meaning),
        problem=f"file {path}, context {context_name!r}: {problem}" if problem else None,
        secrets=meaning.secrets,
        ca_bytes=meaning.ca_bytes,
        is_current=current,
        proxy_url=meaning.proxy_url,
        impersonation=meaning.impersonation,
    )


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) else None


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
        doc = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError:
        doc = None  # reported below by the pure-Python loader, whose marks yaml_error_line reads
    else:
        return _check_document(doc, path)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line = yaml_error_line(exc)
        at = f" at line {line}" if line else ""
        raise KubeconfigError(
            f"invalid YAML{at}: {getattr(exc, 'problem', exc)}", path=path
        ) from exc
    return _check_document(doc, path)


def yaml_error_line(exc: yaml.YAMLError) -> int | None:
    """The line kubectl names for a YAML syntax error (go-yaml v2's rule, which this mirrors):
    the problem's 0-based line, one more for scanner errors, else the context's 0-based line;
    None (no line) when both are 0."""
    problem = getattr(exc, "problem_mark", None)
    context = getattr(exc, "context_mark", None)
    if problem is not None and problem.line:
        return int(problem.line) + (1 if isinstance(exc, yaml.scanner.ScannerError) else 0)
    if context is not None and context.line:
        return int(context.line)
    return None


_GLOB_CHARS = frozenset("*?[")


def _visible_files(directory: str) -> list[str]:
    """A directory's kubeconfig files: its non-hidden regular files, sorted."""
    return [
        os.path.join(directory, name)
        for name in sorted(os.listdir(directory))
        if not name.startswith(".") and os.path.isfile(os.path.join(directory, name))
    ]


def _expand_one(raw: str) -> tuple[list[str], KubeconfigError | None]:
    """One explicit path -> its files, or the error saying why it gives none."""
    path = os.path.expanduser(raw)
    if any(ch in path for ch in _GLOB_CHARS) and not os.path.exists(path):
        matches = sorted(glob.glob(path))
        if not matches:
            return [], KubeconfigError("no file matches this pattern", path=raw)
        files: list[str] = []
        for match in matches:
            files.extend(_visible_files(match) if os.path.isdir(match) else [match])
        return [f for f in files if os.path.isfile(f)], None
    if os.path.isdir(path):
        files = _visible_files(path)
        error = None if files else KubeconfigError("directory holds no kubeconfig file", path=raw)
        return files, error
    if os.path.exists(path):
        return [path], None
    return [], KubeconfigError("no such file or directory", path=raw)


def expand_paths(paths: Sequence[str]) -> tuple[list[str], list[KubeconfigError]]:
    """Explicit paths -> absolute kubeconfig files: a directory gives its (non-hidden) files,
    a glob its matches. Paths that match nothing are errors. Duplicates are read once."""
    files: dict[str, None] = {}
    errors: list[KubeconfigError] = []
    for raw in paths:
        found, error = _expand_one(raw)
        files.update(dict.fromkeys(os.path.abspath(f) for f in found))
        if error is not None:
            errors.append(error)
    return list(files), errors


@dataclass(frozen=True)
class _Loaded:
    targets: list[Target]
    errors: list[KubeconfigError]
    source: str
    files: list[str]


def _load_explicit(paths: Sequence[str]) -> _Loaded:
    """Each file stands alone."""
    files, errors = expand_paths(paths)
    targets: list[Target] = []
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
    return _Loaded(targets, errors, "explicit", files)


def _kubeconfig_env_files(value: str) -> list[str]:
    """KUBECONFIG's files in order: empty entries, repeats and missing files are ignored, as
    kubectl ignores them."""
    files: dict[str, None] = {}
    for entry in value.split(os.pathsep):
        if entry:
            path = os.path.abspath(os.path.expanduser(entry))
            if os.path.exists(path):
                files[path] = None
    return list(files)


def _load_kubeconfig_env(value: str) -> _Loaded:
    """Merged as kubectl merges them; a bad file fails alone."""
    files = _kubeconfig_env_files(value)
    docs: list[tuple[str, Mapping[str, Any]]] = []
    errors: list[KubeconfigError] = []
    for path in files:
        try:
            docs.append((path, load_kubeconfig_file(path)))
        except KubeconfigError as exc:
            errors.append(exc)
    return _Loaded(targets_from_merged(merge_kubeconfigs(docs)), errors, "KUBECONFIG", files)


def _load_default(home: Path) -> _Loaded:
    default = home / ".kube" / "config"
    if not default.exists():
        return _Loaded([], [], "none", [])
    path = str(default.absolute())
    try:
        targets = targets_from_config(load_kubeconfig_file(path), path=path)
    except KubeconfigError as exc:
        return _Loaded([], [exc], "default", [path])
    return _Loaded(targets, [], "default", [path])


def load_targets(
    paths: Sequence[str],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> TargetSet:
    """Find, read and parse the kubeconfigs (explicit paths, else ``KUBECONFIG``, else
    ``~/.kube/config``), then filter."""
    environ = os.environ if environ is None else environ
    if paths:
        loaded = _load_explicit(paths)
    elif environ.get("KUBECONFIG"):
        loaded = _load_kubeconfig_env(environ["KUBECONFIG"])
    else:
        loaded = _load_default(home if home is not None else Path.home())
    kept = filter_targets(loaded.targets, include, exclude)
    kept_ids = {id(t) for t in kept}
    return TargetSet(
        targets=kept,
        errors=loaded.errors,
        source=loaded.source,
        files=tuple(loaded.files),
        filtered_out=[t for t in loaded.targets if id(t) not in kept_ids],
    )


def _in_cluster_server(environ: Mapping[str, str]) -> str | None:
    host = environ.get("KUBERNETES_SERVICE_HOST")
    port = environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        return None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"https://{host}:{port}"


def in_cluster_target(
    environ: Mapping[str, str] | None = None,
    sa_dir: Path = SERVICE_ACCOUNT_DIR,
    *,
    read_file: FileReader = _read_file,
) -> Target | None:
    """The pod's own service account as a target, or None when not running in a cluster.

    It is read as a kubeconfig whose cluster names the service account's CA and whose user
    names its token as a ``tokenFile``, so the same rules apply (the token is stripped)."""
    server = _in_cluster_server(os.environ if environ is None else environ)
    if server is None or not (sa_dir / "token").exists():
        return None
    name = IN_CLUSTER_CONTEXT
    context = {"cluster": name, "user": name}
    meaning = interpret(
        context,
        clusters={name: ({"server": server, "certificate-authority": "ca.crt"}, str(sa_dir))},
        users={name: ({"tokenFile": "token"}, str(sa_dir))},
        read_file=read_file,
    )
    problem = "; ".join(meaning.problems)
    return Target(
        kubeconfig_path=IN_CLUSTER_PATH,
        context_name=name,
        cluster_name=name,
        user_name=name,
        server_url=server,
        auth_kind="token-file",
        insecure_skip_tls_verify=False,
        config=_standalone_config(name, context, meaning),
        problem=f"in-cluster service account ({sa_dir}): {problem}" if problem else None,
        secrets=meaning.secrets,
        ca_bytes=meaning.ca_bytes,
        is_current=True,
    )
