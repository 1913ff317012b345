"""A kubeconfig collects as kubectl reads it: proxies (environment, proxy-url, SOCKS5),
impersonation, path prefixes, [::1], and what kubectl refuses.

Every case runs kubeinv against the simulator; where kubectl is on PATH it is the oracle on the
same kubeconfig (those parts skip cleanly without it).
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.gathering import GatherOptions, gather
from collector.settings import CollectionSettings
from collector.sim.fleet import ClusterSpec, Fleet
from collector.targets import Target, load_targets
from tests.collect.proxy_servers import ConnectProxy, Socks5Server

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH")
FAST = GatherOptions(
    CollectionSettings(timeout=3, cluster_timeout=6, backoff_base=0.01, backoff_max=0.05)
)
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


def edited(
    fleet: Fleet,
    path: Path,
    *,
    cluster: Mapping[str, Any] | None = None,
    user: Mapping[str, Any] | None = None,
    drop_user: tuple[str, ...] = (),
) -> Path:
    """The fleet's kubeconfig with its first cluster and user entries changed."""
    doc = yaml.safe_load(fleet.kubeconfig.read_text())
    doc["clusters"][0]["cluster"].update(cluster or {})
    entry = doc["users"][0]["user"]
    for key in drop_user:
        entry.pop(key, None)
    entry.update(user or {})
    path.write_text(yaml.safe_dump(doc))
    return path


async def collect(path: Path, options: GatherOptions = FAST) -> tuple[Any, Any]:
    (target,) = load_targets([str(path)], environ={}).targets[:1]
    result = await gather([target], options)
    return target, result.outcomes[0]


async def kubectl(path: Path, *args: str, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """kubectl's exit status and output (stdout and stderr) on this kubeconfig."""
    assert KUBECTL is not None
    base = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    proc = await asyncio.create_subprocess_exec(
        KUBECTL,
        "--kubeconfig",
        str(path),
        "--request-timeout",
        "5s",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**base, "HOME": str(path.parent), **(env or {})},
    )
    out, _ = await proc.communicate()
    return int(proc.returncode or 0), out.decode()


@pytest.fixture
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)

    def setenv(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return setenv


# --- proxies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"HTTPS_PROXY": "http://127.0.0.1:1"},
        {"https_proxy": "http://127.0.0.1:1", "NO_PROXY": "example.com"},
    ],
)
async def test_loopback_servers_are_never_proxied(
    sim_fleet, tmp_path: Path, clean_proxy_env, env: dict[str, str]
):
    """aiohttp's trust_env sent this to the dead proxy; kubectl (Go) connects directly."""
    clean_proxy_env(**env)
    fleet = await sim_fleet(clusters=[ClusterSpec(name="a")])
    _target, outcome = await collect(fleet.kubeconfig)
    assert (outcome.status, outcome.error_message) == ("ok", None)
    if KUBECTL:
        code, out = await kubectl(fleet.kubeconfig, "get", "--raw", "/version", env=env)
        assert code == 0, out


async def test_environment_proxy_for_other_servers_by_gos_rules(tmp_path: Path, clean_proxy_env):
    """A server off this machine goes through HTTPS_PROXY unless NO_PROXY matches it. The proxy
    only records the CONNECT: no packet leaves the machine."""
    from collector.kube.clients import open_client  # noqa: PLC0415
    from collector.kube.policy import Deadline, RequestPolicy  # noqa: PLC0415
    from collector.targets import targets_from_config  # noqa: PLC0415

    doc = {
        "clusters": [{"name": "c", "cluster": {"server": "https://10.1.2.3:6443"}}],
        "users": [{"name": "u", "user": {"token": "t0ken-abcd"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
    }
    (target,) = targets_from_config(doc, path=str(tmp_path / "kc"))
    policy = RequestPolicy(backoff_base=0.2, backoff_max=5.0, request_timeout=3, max_retries=0)
    async with ConnectProxy(upstream=False).running() as proxy:
        clean_proxy_env(
            HTTPS_PROXY=f"http://kube:pw-in-env-1@127.0.0.1:{proxy.port}", NO_PROXY="10.9.0.0/16"
        )
        client = await open_client(target, policy=policy, deadline=Deadline.after(10))
        async with client:
            assert client.proxy == f"http://127.0.0.1:{proxy.port}"
            with pytest.raises(
                Exception, match=rf"via proxy http://127\.0\.0\.1:{proxy.port}"
            ) as err:
                await client.get_once("/version", timeout=3)
            assert "pw-in-env-1" not in str(err.value)
        assert proxy.requests == [("10.1.2.3", 6443)]
        for no_proxy in ("10.0.0.0/8", "10.1.2.3:6443", "10.1.2.3", "*"):
            clean_proxy_env(NO_PROXY=no_proxy)
            client = await open_client(target, policy=policy, deadline=Deadline.after(10))
            async with client:
                assert client.proxy is None, no_proxy  # would connect directly: not sent


async def test_proxy_url_http_connect_is_used_even_for_loopback(
    sim_fleet, tmp_path: Path, clean_proxy_env
):
    clean_proxy_env(HTTPS_PROXY="http://127.0.0.1:1")  # the cluster's proxy-url comes first
    fleet = await sim_fleet(clusters=[ClusterSpec(name="a")])
    port = int(fleet.clusters[0].server_url.rsplit(":", 1)[1])
    async with ConnectProxy().running() as proxy:
        path = edited(
            fleet, tmp_path / "kc", cluster={"proxy-url": f"http://127.0.0.1:{proxy.port}"}
        )
        target, outcome = await collect(path)
        assert target.proxy_url == f"http://127.0.0.1:{proxy.port}"
        assert outcome.status == "ok", outcome.error_message
        assert proxy.requests and set(proxy.requests) == {("127.0.0.1", port)}
        if KUBECTL:
            proxy.requests.clear()
            code, out = await kubectl(path, "get", "--raw", "/version")
            assert code == 0, out
            assert set(proxy.requests) == {("127.0.0.1", port)}


async def test_socks5_proxy_url(sim_fleet, tmp_path: Path, clean_proxy_env):
    """ssh -D tunnels: kubeinv used to fail with "Bad status line ... b'\\x05\\x00'"."""
    fleet = await sim_fleet(clusters=[ClusterSpec(name="a", nodes=4)])
    port = int(fleet.clusters[0].server_url.rsplit(":", 1)[1])
    async with Socks5Server().running() as socks:
        path = edited(
            fleet, tmp_path / "kc", cluster={"proxy-url": f"socks5://127.0.0.1:{socks.port}"}
        )
        _target, outcome = await collect(path)
        assert (outcome.status, outcome.node_count) == ("ok", 4), outcome.error_message
        assert socks.requests and set(socks.requests) == {("127.0.0.1", port)}
        if KUBECTL:
            socks.requests.clear()
            code, out = await kubectl(path, "get", "nodes", "-o", "name")
            assert code == 0, out
            assert len(out.split()) == 4
            assert set(socks.requests) == {("127.0.0.1", port)}


async def test_error_through_a_proxy_names_it_without_credentials(
    sim_fleet, tmp_path: Path, clean_proxy_env
):
    fleet = await sim_fleet(clusters=[ClusterSpec(name="a")])
    async with Socks5Server().running() as dead:
        closed = dead.port  # closed once the block ends
    for scheme in ("http", "socks5"):
        proxy = f"{scheme}://kube:pr0xy-Passw0rd@127.0.0.1:{closed}"
        path = edited(fleet, tmp_path / f"{scheme}.kc", cluster={"proxy-url": proxy})
        target, outcome = await collect(path)
        assert outcome.status == "failed"
        assert f"via proxy {scheme}://127.0.0.1:{closed}" in (outcome.error_message or ""), (
            outcome.error_message
        )
        assert "pr0xy-Passw0rd" not in (outcome.error_message or "")
        assert "pr0xy-Passw0rd" in target.secrets  # and redacted from every log line


# --- impersonation -----------------------------------------------------------------------------


IMPERSONATING_USER = {
    "as": "jane",
    "as-uid": "uid-1234",
    "as-groups": ["developers", "auditors"],
    "as-user-extra": {"scopes": ["view", "read"], "example.com/team": ["blue"]},
}


async def test_impersonation_headers_are_sent_and_enforced(sim_fleet, tmp_path: Path):
    fleet = await sim_fleet(clusters=[ClusterSpec(name="a", grants={"ops": ("*",)})])
    cluster = fleet.clusters[0]
    path = edited(fleet, tmp_path / "kc", user=IMPERSONATING_USER)
    target, outcome = await collect(path)
    # jane has no grant: RBAC lets her read /version and discovery, not nodes.
    assert (outcome.status, outcome.error_class) == ("partial", "Forbidden")
    assert 'User "jane" cannot list resource "nodes"' in (outcome.error_message or "")
    ours = [r for r in cluster.request_log if r.path == "/api/v1/nodes"]
    assert ours and {r.as_user for r in ours} == {"jane"}
    headers = {k.lower(): v for k, v in ours[0].headers.items() if k.startswith("Impersonate-")}
    assert headers["impersonate-user"] == "jane"
    assert headers["impersonate-uid"] == "uid-1234"
    assert headers["impersonate-extra-example.com%2fteam"] == "blue"
    assert target.impersonation.count(("Impersonate-Group", "developers")) == 1
    if KUBECTL:
        cluster.request_log.clear()
        code, out = await kubectl(path, "get", "nodes")
        assert code != 0 and 'User "jane" cannot list resource "nodes"' in out
        theirs = [r for r in cluster.request_log if r.path == "/api/v1/nodes"]
        assert theirs

        def impersonation(record: Any) -> list[tuple[str, str]]:
            return sorted(
                (k.lower(), v) for k, v in record.headers.items() if k.startswith("Impersonate-")
            )

        assert impersonation(ours[0]) == impersonation(theirs[0])
        assert ours[0].as_groups == theirs[0].as_groups == ("developers", "auditors")


async def test_impersonated_group_with_a_grant_collects(sim_fleet, tmp_path: Path):
    fleet = await sim_fleet(clusters=[ClusterSpec(name="a", nodes=2, grants={"ops": ("*",)})])
    path = edited(fleet, tmp_path / "kc", user={"as": "jane", "as-groups": ["ops"]})
    _target, outcome = await collect(path)
    assert (outcome.status, outcome.node_count) == ("ok", 2), outcome.error_message
    if KUBECTL:
        code, out = await kubectl(path, "get", "nodes", "-o", "name")
        assert code == 0 and len(out.split()) == 2, out


# --- where the server is -----------------------------------------------------------------------


async def test_path_prefixed_server(sim_fleet, tmp_path: Path):
    fleet = await sim_fleet(
        clusters=[ClusterSpec(name="a", nodes=3, path_prefix="/k8s/clusters/c-m-abc12")]
    )
    cluster = fleet.clusters[0]
    assert cluster.server_url.endswith("/k8s/clusters/c-m-abc12")
    _target, outcome = await collect(fleet.kubeconfig)
    assert (outcome.status, outcome.node_count) == ("ok", 3), outcome.error_message
    assert "/api/v1/nodes" in {r.path for r in cluster.request_log}
    if KUBECTL:
        code, out = await kubectl(fleet.kubeconfig, "get", "nodes", "-o", "name")
        assert code == 0 and len(out.split()) == 3, out
        # Outside the prefix there is no API.
        root = cluster.server_url.removesuffix("/k8s/clusters/c-m-abc12")
        doc = yaml.safe_load(fleet.kubeconfig.read_text())
        doc["clusters"][0]["cluster"]["server"] = root
        (tmp_path / "root.kc").write_text(yaml.safe_dump(doc))
        code, out = await kubectl(tmp_path / "root.kc", "get", "--raw", "/api/v1/nodes")
        assert code != 0 and "NotFound" in out, out


async def test_ipv6_loopback_server(sim_fleet, tmp_path: Path):
    fleet = await sim_fleet(clusters=[ClusterSpec(name="v6", nodes=2, host="::1")])
    assert fleet.clusters[0].server_url.startswith("https://[::1]:")
    _target, outcome = await collect(fleet.kubeconfig)
    assert (outcome.status, outcome.node_count) == ("ok", 2), outcome.error_message
    if KUBECTL:
        code, out = await kubectl(fleet.kubeconfig, "get", "nodes", "-o", "name")
        assert code == 0 and len(out.split()) == 2, out


# --- what kubectl refuses ----------------------------------------------------------------------

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"
CA_DATA = base64.b64encode(b"not used").decode()

# (case, cluster changes, user changes, user keys dropped, kubectl's reason)
REFUSED = [
    (
        "insecure-with-ca",
        {"insecure-skip-tls-verify": True},
        {},
        (),
        "specifying a root certificates file with the insecure flag is not allowed",
    ),
    (
        "exec-v1-without-interactive-mode",
        {},
        {"exec": {"apiVersion": V1, "command": "true"}},
        ("client-certificate-data", "client-key-data"),
        "interactiveMode must be specified for {user} to use exec authentication plugin",
    ),
    (
        "exec-v1alpha1",
        {},
        {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1alpha1",
                "command": "true",
                "interactiveMode": "Never",
            }
        },
        ("client-certificate-data", "client-key-data"),
        'exec plugin: invalid apiVersion "client.authentication.k8s.io/v1alpha1"',
    ),
    (
        "token-and-basic-auth",
        {},
        {"token": "abcd-token-1234", "username": "admin", "password": "hunter2-pw"},
        ("client-certificate-data", "client-key-data"),
        "more than one authentication method found for {user}; found [token basicAuth], "
        "only one is allowed",
    ),
    (
        "token-and-password-only",
        {},
        {"token": "abcd-token-1234", "password": "hunter2-pw"},
        ("client-certificate-data", "client-key-data"),
        "more than one authentication method found for {user}; found [token basicAuth], "
        "only one is allowed",
    ),
    (
        "groups-without-user",
        {},
        {"as-groups": ["ops"]},
        (),
        "requesting uid, groups or user-extra for {user} without impersonating a user",
    ),
    (
        "exec-and-auth-provider",
        {},
        {
            "exec": {"apiVersion": V1BETA1, "command": "true"},
            "auth-provider": {"name": "oidc", "config": {}},
        },
        ("client-certificate-data", "client-key-data"),
        "authProvider cannot be provided in combination with an exec plugin for {user}",
    ),
    (
        "unsupported-proxy-scheme",
        {"proxy-url": "ftp://127.0.0.1:21"},
        {},
        (),
        'invalid \'proxy-url\' "ftp://127.0.0.1:21" for cluster "{cluster}": unsupported '
        'scheme "ftp", must be http, https, or socks5',
    ),
    (
        "ca-data-and-ca-file",
        {"certificate-authority": "/etc/hostname"},
        {},
        (),
        "certificate-authority-data and certificate-authority are both specified for "
        "{cluster}. certificate-authority-data will override.",
    ),
    (
        "client-key-missing",
        {},
        {},
        ("client-key-data",),
        "client-key-data or client-key must be specified for {user} to use the clientCert "
        "authentication method.",
    ),
]


@pytest.mark.parametrize("refusal", REFUSED, ids=[c[0] for c in REFUSED])
async def test_what_kubectl_refuses_is_broken_with_its_reason(sim_fleet, tmp_path: Path, refusal):
    case, cluster, user, drop, reason = refusal
    fleet = await sim_fleet(clusters=[ClusterSpec(name="a")])
    path = edited(fleet, tmp_path / f"{case}.kc", cluster=cluster, user=user, drop_user=drop)
    target: Target
    target, outcome = await collect(path)
    expected = reason.format(user=target.user_name, cluster=target.cluster_name)
    assert target.broken and expected in (target.problem or ""), target.problem
    assert str(path) in (target.problem or "") and repr(target.context_name) in target.problem
    assert (outcome.status, outcome.error_class) == ("failed", "BrokenContext")
    assert expected in (outcome.error_message or "")
    assert not fleet.clusters[0].request_log  # refused before any request
    if KUBECTL:
        code, out = await kubectl(path, "get", "--raw", "/version")
        assert code != 0 and expected in out, out


@pytest.mark.parametrize(("name", "works"), [("kubernetes", True), ("wrong.example", False)])
async def test_tls_server_name_is_what_the_certificate_is_checked_against(
    sim_fleet, tmp_path: Path, name: str, works: bool
):
    fleet = await sim_fleet(clusters=[ClusterSpec(name="a")])
    path = edited(fleet, tmp_path / "kc", cluster={"tls-server-name": name})
    _target, outcome = await collect(path)
    assert (outcome.status == "ok") is works, outcome.error_message
    if not works:
        assert outcome.error_class == "TLS"
    if KUBECTL:
        code, out = await kubectl(path, "get", "--raw", "/version")
        assert (code == 0) is works, out


# --- redaction ---------------------------------------------------------------------------------


async def test_failure_messages_stay_readable_and_secrets_do_not(sim_fleet, tmp_path: Path):
    """AWS_PROFILE=default is no secret: the context name and the plugin's answer stay
    readable; the token in the plugin's environment does not appear."""
    fleet = await sim_fleet(clusters=[ClusterSpec(name="a")])
    plugin = tmp_path / "plugin.sh"
    plugin.write_text(
        "#!/bin/sh\n"
        'echo "token $SESSION_TOKEN refused for profile $AWS_PROFILE" >&2\n'
        'printf \'{"kind":"ExecCredential","apiVersion":"%s","status":{"token":"x"}}\''
        ' "$AWS_PROFILE"\n'
    )
    plugin.chmod(0o755)
    doc = yaml.safe_load(fleet.kubeconfig.read_text())
    doc["contexts"][0]["name"] = "default"
    doc["current-context"] = "default"
    doc["users"][0]["user"] = {
        "exec": {
            "apiVersion": V1,
            "command": "./plugin.sh",
            "interactiveMode": "Never",
            "env": [
                {"name": "AWS_PROFILE", "value": "default"},
                {"name": "SESSION_TOKEN", "value": "sess-9f8e7d6c"},
            ],
        }
    }
    path = tmp_path / "kc"
    path.write_text(yaml.safe_dump(doc))
    target, outcome = await collect(path)
    assert target.context_name == "default" and target.secrets == ("sess-9f8e7d6c",)
    assert (outcome.status, outcome.error_class) == ("failed", "ExecPlugin")
    assert "answered apiVersion 'default'" in (outcome.error_message or "")
    assert "default" in (outcome.error_message or "")

    plugin.write_text(plugin.read_text() + "exit 1\n")  # now its stderr is the message
    _target, outcome = await collect(path)
    message = outcome.error_message or ""
    assert "token [REDACTED] refused for profile default" in message, message
    assert "sess-9f8e7d6c" not in message
