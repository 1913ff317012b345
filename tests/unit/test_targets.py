"""Kubeconfig loading: precedence, kubectl's KUBECONFIG merge, path resolution, broken contexts."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.errors import KubeconfigError
from collector.targets import (
    describe_target,
    in_cluster_target,
    load_kubeconfig_file,
    load_targets,
    targets_from_config,
)

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl not on PATH")


def kubeconfig(
    *,
    contexts: dict[str, tuple[str, str]],
    clusters: dict[str, dict[str, Any]] | None = None,
    users: dict[str, dict[str, Any]] | None = None,
    current: str | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, c in (clusters or {}).items()],
        "users": [{"name": n, "user": u} for n, u in (users or {}).items()],
        "contexts": [
            {"name": n, "context": {"cluster": c, "user": u}} for n, (c, u) in contexts.items()
        ],
    }
    if current is not None:
        doc["current-context"] = current
    return doc


def write(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    return path


def admin_conf(server: str, token: str = "t0ken-abcdef") -> dict[str, Any]:
    return kubeconfig(
        contexts={"kubernetes-admin@kubernetes": ("kubernetes", "kubernetes-admin")},
        clusters={"kubernetes": {"server": server}},
        users={"kubernetes-admin": {"token": token}},
        current="kubernetes-admin@kubernetes",
    )


def names(targets: Any) -> list[str]:
    return [t.context_name for t in targets]


# --- explicit files ------------------------------------------------------------------------


def test_two_standalone_files_with_identical_context_names_give_two_targets(tmp_path: Path):
    a = write(tmp_path / "a" / "admin.conf", admin_conf("https://10.0.0.1:6443", "token-aaaa"))
    b = write(tmp_path / "b" / "admin.conf", admin_conf("https://10.0.0.2:6443", "token-bbbb"))
    result = load_targets([str(a), str(b)], environ={}, home=tmp_path)
    assert result.errors == []
    assert [(t.kubeconfig_path, t.context_name, t.server_url) for t in result.targets] == [
        (str(a), "kubernetes-admin@kubernetes", "https://10.0.0.1:6443"),
        (str(b), "kubernetes-admin@kubernetes", "https://10.0.0.2:6443"),
    ]
    assert result.targets[0].secrets == ("token-aaaa",)
    assert result.targets[1].secrets == ("token-bbbb",)


def test_directory_and_glob_expand_to_their_files(tmp_path: Path):
    for i in range(3):
        write(tmp_path / "fleet" / f"c{i}.yaml", admin_conf(f"https://10.0.0.{i}:6443"))
    write(tmp_path / "fleet" / ".hidden", "not: a kubeconfig")
    by_dir = load_targets([str(tmp_path / "fleet")], environ={}, home=tmp_path)
    by_glob = load_targets([str(tmp_path / "fleet" / "c*.yaml")], environ={}, home=tmp_path)
    expected = [f"https://10.0.0.{i}:6443" for i in range(3)]
    assert [t.server_url for t in by_dir.targets] == expected
    assert [t.server_url for t in by_glob.targets] == expected
    assert by_dir.errors == by_glob.errors == []


def test_malformed_and_missing_files_are_reported_and_others_still_used(tmp_path: Path):
    good = write(tmp_path / "good", admin_conf("https://10.0.0.1:6443"))
    bad = write(tmp_path / "bad", "clusters: [unclosed\n")
    notconfig = write(tmp_path / "list", "- 1\n- 2\n")
    missing = tmp_path / "missing"
    result = load_targets(
        [str(bad), str(good), str(notconfig), str(missing), str(tmp_path / "x*")],
        environ={},
        home=tmp_path,
    )
    assert names(result.targets) == ["kubernetes-admin@kubernetes"]
    messages = [str(e) for e in result.errors]
    assert all(isinstance(e, KubeconfigError) for e in result.errors)
    assert any(str(bad) in m and "invalid YAML" in m for m in messages)
    assert any(str(notconfig) in m and "not a kubeconfig" in m for m in messages)
    assert any(str(missing) in m for m in messages)
    assert any("x*" in m and "no file matches" in m for m in messages)


def test_include_and_exclude_globs_on_context_names(tmp_path: Path):
    doc = kubeconfig(
        contexts={n: ("c", "u") for n in ("prod-eu", "prod-us", "staging-eu", "dev")},
        clusters={"c": {"server": "https://10.0.0.1"}},
        users={"u": {"token": "abcd1234"}},
    )
    path = str(write(tmp_path / "config", doc))
    load = lambda inc, exc: names(  # noqa: E731
        load_targets([path], include=inc, exclude=exc, environ={}, home=tmp_path).targets
    )
    assert load((), ()) == ["dev", "prod-eu", "prod-us", "staging-eu"]
    assert load(("prod-*",), ()) == ["prod-eu", "prod-us"]
    assert load(("prod-*", "dev"), ()) == ["dev", "prod-eu", "prod-us"]
    assert load((), ("*-eu",)) == ["dev", "prod-us"]
    assert load(("prod-*",), ("*-us",)) == ["prod-eu"]
    assert load(("nothing*",), ()) == []


# --- broken contexts -----------------------------------------------------------------------


def test_context_with_missing_cluster_or_user_is_a_broken_target(tmp_path: Path):
    doc = kubeconfig(
        contexts={
            "ok": ("c", "u"),
            "no-cluster": ("ghost", "u"),
            "no-user": ("c", "ghost"),
            "names-nothing": ("", ""),
        },
        clusters={"c": {"server": "https://10.0.0.1:6443"}, "serverless": {}},
        users={"u": {"token": "abcd1234"}},
    )
    doc["contexts"].append({"name": "no-server", "context": {"cluster": "serverless", "user": "u"}})
    path = str(write(tmp_path / "config", doc))
    targets = {t.context_name: t for t in load_targets([path], environ={}, home=tmp_path).targets}
    assert targets["ok"].problem is None
    for name, fragment in [
        ("no-cluster", "cluster 'ghost' is not defined"),
        ("no-user", "user 'ghost' is not defined"),
        ("names-nothing", "names no cluster"),
        ("no-server", "has no server"),
    ]:
        problem = targets[name].problem
        assert problem is not None and fragment in problem, (name, problem)
        assert path in problem and repr(name) in problem
    # Never a localhost:8080 fallback.
    assert targets["no-server"].server_url is None
    assert targets["no-cluster"].server_url is None


def test_missing_token_file_or_client_key_is_a_problem(tmp_path: Path):
    doc = kubeconfig(
        contexts={"tf": ("c", "tf"), "cert": ("c", "cert"), "nokey": ("c", "nokey")},
        clusters={"c": {"server": "https://10.0.0.1"}},
        users={
            "tf": {"tokenFile": "nope.txt"},
            "cert": {"client-certificate": "c.crt", "client-key": "missing.key"},
            "nokey": {"client-certificate-data": "Zm9v"},
        },
    )
    path = str(write(tmp_path / "config", doc))
    targets = {t.context_name: t for t in targets_from_config(doc, path=path)}
    assert "tokenFile" in (targets["tf"].problem or "")
    assert str(tmp_path / "nope.txt") in (targets["tf"].problem or "")
    assert "missing.key" in (targets["cert"].problem or "")
    assert "client-key-data or client-key must be specified for nokey" in (
        targets["nokey"].problem or ""
    )


# --- paths, token files, secrets -----------------------------------------------------------


def test_relative_paths_resolve_against_the_kubeconfig_directory(tmp_path: Path):
    base = tmp_path / "conf"
    (base / "pki").mkdir(parents=True)
    (base / "pki" / "ca.crt").write_bytes(b"CA-BYTES")
    (base / "pki" / "client.crt").write_text("CERT")  # kubectl refuses a missing one
    (base / "pki" / "client.key").write_text("-----BEGIN PRIVATE KEY-----\nsecretkey\n")
    (base / "token").write_text("s3cr3t-token\r\n\n")
    doc = kubeconfig(
        contexts={"cert": ("c", "cert"), "exec": ("c", "exec"), "tf": ("c", "tf")},
        clusters={"c": {"server": "https://10.0.0.1", "certificate-authority": "pki/ca.crt"}},
        users={
            "cert": {"client-certificate": "pki/client.crt", "client-key": "pki/client.key"},
            "exec": {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1",
                    "command": "./bin/get-token",
                    "env": [{"name": "SECRET", "value": "env-secret-value"}],
                }
            },
            "tf": {"tokenFile": "token"},
        },
    )
    path = str(write(base / "config", doc))
    targets = {t.context_name: t for t in targets_from_config(doc, path=path)}
    cert = targets["cert"]
    assert cert.auth_kind == "client-certificate"
    assert cert.problem is None
    cluster = cert.config["clusters"][0]["cluster"]
    assert cluster["certificate-authority"] == str(base / "pki" / "ca.crt")
    assert cert.ca_bytes == b"CA-BYTES"
    user = cert.config["users"][0]["user"]
    assert user["client-certificate"] == str(base / "pki" / "client.crt")
    assert user["client-key"] == str(base / "pki" / "client.key")
    assert "-----BEGIN PRIVATE KEY-----\nsecretkey\n" in cert.secrets

    exec_target = targets["exec"]
    assert exec_target.auth_kind == "exec"
    exec_conf = exec_target.config["users"][0]["user"]["exec"]
    assert exec_conf["command"] == str(base / "bin" / "get-token")
    assert "env-secret-value" in exec_target.secrets

    tf = targets["tf"]
    assert tf.auth_kind == "token-file"
    tf_user = tf.config["users"][0]["user"]
    assert tf_user == {"token": "s3cr3t-token"}  # newline stripped, inlined
    assert tf.secrets == ("s3cr3t-token",)
    # The target's config is self-contained.
    assert tf.config["current-context"] == "tf"
    assert [c["name"] for c in tf.config["contexts"]] == ["tf"]


def test_bare_exec_command_is_left_for_path_lookup(tmp_path: Path):
    doc = kubeconfig(
        contexts={"x": ("c", "u")},
        clusters={"c": {"server": "https://10.0.0.1"}},
        users={"u": {"exec": {"command": "aws", "args": ["eks", "get-token"]}}},
    )
    (target,) = targets_from_config(doc, path=str(tmp_path / "config"))
    assert target.config["users"][0]["user"]["exec"]["command"] == "aws"


def test_secrets_cover_every_credential(tmp_path: Path):
    key_pem = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----"
    doc = kubeconfig(
        contexts={"basic": ("c", "basic"), "kd": ("c", "kd"), "oidc": ("c", "oidc")},
        clusters={
            "c": {
                "server": "https://10.0.0.1",
                "certificate-authority-data": base64.b64encode(b"PEMCA").decode(),
                "insecure-skip-tls-verify": True,
            }
        },
        users={
            "basic": {"username": "admin", "password": "hunter22"},
            "kd": {
                "client-certificate-data": base64.b64encode(b"CERT").decode(),
                "client-key-data": base64.b64encode(key_pem.encode()).decode(),
            },
            "oidc": {
                "auth-provider": {
                    "name": "oidc",
                    "config": {"id-token": "idtok-123", "refresh-token": "ref-456", "idp": "x"},
                }
            },
        },
    )
    targets = {t.context_name: t for t in targets_from_config(doc, path=str(tmp_path / "c"))}
    assert targets["basic"].auth_kind == "basic"
    assert targets["basic"].secrets == ("hunter22",)
    assert targets["kd"].auth_kind == "client-certificate"
    assert key_pem in targets["kd"].secrets
    assert base64.b64encode(key_pem.encode()).decode() in targets["kd"].secrets
    assert targets["oidc"].auth_kind == "auth-provider"
    assert set(targets["oidc"].secrets) == {"idtok-123", "ref-456"}
    assert targets["kd"].ca_bytes == b"PEMCA"
    assert targets["kd"].insecure_skip_tls_verify is True
    shown = json.dumps([describe_target(t) for t in targets.values()])
    for target in targets.values():
        for secret in target.secrets:
            assert secret not in shown
            assert secret not in repr(target)


# --- KUBECONFIG merge, checked against kubectl ----------------------------------------------


@pytest.fixture
def merge_files(tmp_path: Path) -> list[Path]:
    """Three files with overlapping context, cluster and user names."""
    a = kubeconfig(
        contexts={"shared": ("c1", "u1"), "only-a": ("c1", "u1")},
        clusters={"c1": {"server": "https://10.0.1.1", "certificate-authority": "ca.crt"}},
        users={"u1": {"token": "token-from-a"}},
    )  # no current-context
    b = kubeconfig(
        contexts={"shared": ("c2", "u2"), "only-b": ("c1", "u2")},
        clusters={
            "c1": {"server": "https://10.0.2.1", "certificate-authority": "ca.crt"},
            "c2": {"server": "https://10.0.2.2"},
        },
        users={"u1": {"token": "token-from-b"}, "u2": {"token": "token-u2-b"}},
        current="only-b",
    )
    c = kubeconfig(
        contexts={"only-c": ("c2", "u1")},
        clusters={"c2": {"server": "https://10.0.3.2"}},
        users={},
        current="only-c",
    )
    paths = []
    for name, doc in (("a", a), ("b", b), ("c", c)):
        path = write(tmp_path / name / "config", doc)
        (path.parent / "ca.crt").write_text(f"CA of {name}\n")
        paths.append(path)
    return paths


def kubectl(args: list[str], kubeconfig_env: str, home: Path) -> str:
    assert KUBECTL is not None
    env = {"KUBECONFIG": kubeconfig_env, "HOME": str(home), "PATH": os.environ.get("PATH", "")}
    out = subprocess.run(
        [KUBECTL, *args], env=env, capture_output=True, text=True, check=True, timeout=30
    )
    return out.stdout


@pytest.mark.parametrize("order", [(0, 1, 2), (1, 0, 2), (2, 1, 0), (0, 2, 1)])
def test_kubeconfig_merge_rules(merge_files: list[Path], tmp_path: Path, order: tuple[int, ...]):
    env_value = os.pathsep.join(["", *(str(merge_files[i]) for i in order), ""])
    result = load_targets([], environ={"KUBECONFIG": env_value}, home=tmp_path)
    assert result.source == "KUBECONFIG"
    assert result.errors == []
    first = order[0]
    targets = {t.context_name: t for t in result.targets}
    assert sorted(targets) == ["only-a", "only-b", "only-c", "shared"]
    # current-context from the first file that sets it (a sets none).
    setters = [i for i in order if i != 0]
    expected_current = {1: "only-b", 2: "only-c"}[setters[0]]
    assert [t.context_name for t in result.targets if t.is_current] == [expected_current]
    # Duplicate names: the first file wins, for contexts, clusters and users alike.
    shared = targets["shared"]
    shared_from = next(i for i in order if i in (0, 1))
    assert shared.kubeconfig_path == str(merge_files[shared_from])
    assert shared.cluster_name == ("c1" if shared_from == 0 else "c2")
    c1_from = next(i for i in order if i in (0, 1))
    assert targets["only-a"].server_url == (
        "https://10.0.1.1" if c1_from == 0 else "https://10.0.2.1"
    )
    # A cluster entry's relative CA path resolves against the file that defined that entry.
    assert targets["only-a"].ca_bytes == f"CA of {'ab'[c1_from]}\n".encode()
    u1_from = next(i for i in order if i in (0, 1))
    assert targets["only-c"].secrets == (f"token-from-{'ab'[u1_from]}",)
    assert first in order


@needs_kubectl
@pytest.mark.kubectl
@pytest.mark.parametrize("order", [(0, 1, 2), (1, 0, 2), (2, 1, 0), (0, 2, 1)])
def test_kubeconfig_merge_agrees_with_kubectl(
    merge_files: list[Path], tmp_path: Path, order: tuple[int, ...]
):
    env_value = os.pathsep.join(["", *(str(merge_files[i]) for i in order), ""])
    home = tmp_path / "home"
    home.mkdir()
    result = load_targets([], environ={"KUBECONFIG": env_value}, home=home)

    assert (
        names(result.targets)
        == kubectl(["config", "get-contexts", "-o", "name"], env_value, home).split()
    )
    current = kubectl(["config", "current-context"], env_value, home).strip()
    assert [t.context_name for t in result.targets if t.is_current] == [current]

    rows = kubectl(["config", "get-contexts"], env_value, home).splitlines()[1:]
    for row in rows:
        fields = row.replace("*", " ").split()
        name, cluster, user = fields[0], fields[1], fields[2]
        target = next(t for t in result.targets if t.context_name == name)
        assert (target.cluster_name, target.user_name) == (cluster, user)

    # Servers, CA and tokens as kubectl resolves them (flatten embeds the files it reads).
    for target in result.targets:
        view = json.loads(
            kubectl(
                [
                    "config",
                    "view",
                    "--minify",
                    "--flatten",
                    "--raw",
                    "-o",
                    "json",
                    "--context",
                    target.context_name,
                ],
                env_value,
                home,
            )
        )
        cluster = view["clusters"][0]["cluster"]
        assert target.server_url == cluster["server"]
        ca = cluster.get("certificate-authority-data")
        assert target.ca_bytes == (base64.b64decode(ca) if ca else None)
        user = view["users"][0]["user"] if view.get("users") else {}
        assert target.secrets == ((user["token"],) if user.get("token") else ())


def test_kubeconfig_env_ignores_missing_files_and_reports_malformed(tmp_path: Path):
    good = write(tmp_path / "good", admin_conf("https://10.0.0.1:6443"))
    bad = write(tmp_path / "bad", "{{{{")
    env = os.pathsep.join([str(tmp_path / "missing"), str(bad), str(good)])
    result = load_targets([], environ={"KUBECONFIG": env}, home=tmp_path)
    assert names(result.targets) == ["kubernetes-admin@kubernetes"]
    assert len(result.errors) == 1 and str(bad) in str(result.errors[0])


def test_precedence_explicit_then_env_then_home(tmp_path: Path):
    home = tmp_path / "home"
    write(home / ".kube" / "config", admin_conf("https://home:6443"))
    env_file = write(tmp_path / "env", admin_conf("https://env:6443"))
    explicit = write(tmp_path / "explicit", admin_conf("https://explicit:6443"))
    env = {"KUBECONFIG": str(env_file)}
    assert load_targets([str(explicit)], environ=env, home=home).targets[0].server_url == (
        "https://explicit:6443"
    )
    assert load_targets([], environ=env, home=home).targets[0].server_url == "https://env:6443"
    from_home = load_targets([], environ={}, home=home)
    assert from_home.source == "default"
    assert from_home.targets[0].server_url == "https://home:6443"
    nothing = load_targets([], environ={}, home=tmp_path / "nohome")
    assert nothing.targets == [] and nothing.errors == [] and nothing.source == "none"


# --- in-cluster ----------------------------------------------------------------------------


def test_in_cluster_service_account(tmp_path: Path):
    sa = tmp_path / "sa"
    sa.mkdir()
    assert in_cluster_target({}, sa) is None
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert in_cluster_target(env, sa) is None  # no token file: not in a pod
    (sa / "token").write_text("sa-token-value\n")
    (sa / "ca.crt").write_bytes(b"CLUSTER CA")
    target = in_cluster_target(env, sa)
    assert target is not None and target.problem is None
    assert target.server_url == "https://10.96.0.1:443"
    assert target.ca_bytes == b"CLUSTER CA"
    assert target.secrets == ("sa-token-value",)
    assert target.config["users"][0]["user"] == {"token": "sa-token-value"}
    assert target.config["clusters"][0]["cluster"]["certificate-authority"] == str(sa / "ca.crt")
    v6 = in_cluster_target({**env, "KUBERNETES_SERVICE_HOST": "fd00::1"}, sa)
    assert v6 is not None and v6.server_url == "https://[fd00::1]:443"


# --- YAML syntax errors name kubectl's line ---------------------------------------------------

YAML_ERRORS = [
    # (file text, the line kubectl names)
    ("apiVersion: v1\nkind: Config\nclusters: [unclosed\ncontexts: []\n", 3),
    ("apiVersion: v1\nclusters:\n- name: a\n  cluster:\n    server: x\n   bad: indent\n", 5),
    ('apiVersion: v1\nkind: Config\nusers:\n- name: "unterminated\n  user: {}\n', 6),
    ("a: b\n\tc: d\n", 2),
    ("apiVersion: v1\nfoo: [a, b\n\n\nbar: 1\n", 4),
]


@pytest.mark.parametrize(("text", "line"), YAML_ERRORS)
def test_yaml_syntax_error_names_kubectls_line(tmp_path: Path, text: str, line: int):
    path = write(tmp_path / "config", text)
    with pytest.raises(KubeconfigError, match=rf"invalid YAML at line {line}:") as raised:
        load_kubeconfig_file(str(path))
    assert str(path) in str(raised.value)
    if KUBECTL:
        out = subprocess.run(
            [KUBECTL, "--kubeconfig", str(path), "config", "view"],
            check=False,
            capture_output=True,
            text=True,
            env={"HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")},
            timeout=30,
        )
        assert out.returncode != 0 and f"yaml: line {line}:" in out.stderr, out.stderr
