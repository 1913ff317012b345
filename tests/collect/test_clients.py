"""Building clients from targets: auth material, exec plugins, no credential files, User-Agent.

No request is sent here; requests over HTTPS are tested against the simulator.
"""

import base64
import contextlib
import os
import sys
import tempfile

import pytest

from collector import __version__
from collector.errors import BrokenContextError, ExecPluginError
from collector.kube.clients import open_client
from collector.kube.exec_plugin import ExecCredentialCache
from collector.kube.policy import Deadline, RequestPolicy
from collector.kube.transport import TLSContexts, request_headers
from collector.sim.certs import CertificateAuthority
from collector.targets import targets_from_config

V1 = "client.authentication.k8s.io/v1"
CA = CertificateAuthority.generate()
CLIENT = CA.issue_client("alice")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(user: dict, cluster: dict | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "ctx",
        "clusters": [
            {
                "name": "c",
                "cluster": cluster
                or {
                    "server": "https://127.0.0.1:6443",
                    "certificate-authority-data": b64(CA.cert_pem),
                },
            }
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
    }


def target(tmp_path, user, cluster=None):
    path = tmp_path / "kubeconfig"
    path.write_text("")
    (t,) = targets_from_config(kubeconfig(user, cluster), path=str(path))
    return t


async def build(t):
    return await open_client(
        t,
        policy=RequestPolicy(backoff_base=0.2, backoff_max=5.0, max_retries=4, request_timeout=5),
        deadline=Deadline.after(30),
        exec_credentials=ExecCredentialCache(),
        tls_contexts=TLSContexts(),
    )


async def auth_header(client) -> str | None:
    ticket = await client._transport.authorize()
    return ticket.authorization


def open_files() -> list[str]:
    """Where this process's descriptors point (deleted files included)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            found.append(os.readlink(f"/proc/self/fd/{fd}"))
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_client_certificate_data_is_never_left_in_a_file(tmp_path, monkeypatch):
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))  # others share /tmp
    t = target(
        tmp_path,
        {"client-certificate-data": b64(CLIENT.cert_pem), "client-key-data": b64(CLIENT.key_pem)},
    )
    fds_before = open_files()
    client = await build(t)
    transport = client._transport
    assert transport.tls.cert == CLIENT.cert_pem and transport.tls.key == CLIENT.key_pem
    assert transport.tls_contexts.built == 1  # the key is loaded into the TLS context
    assert client.server_url == "https://127.0.0.1:6443"
    assert await auth_header(client) is None
    # nothing written to the temporary directory, no descriptor left on a (deleted) key file
    assert os.listdir(private_tmp) == []
    new = [f for f in open_files() if f not in fds_before]
    assert [f for f in new if "deleted" in f or "kubeinv" in f or "memfd" in f] == []
    await client.close()


async def test_tls_contexts_are_shared_between_targets_with_the_same_material(tmp_path):
    user = {"client-certificate-data": b64(CLIENT.cert_pem), "client-key-data": b64(CLIENT.key_pem)}
    contexts = TLSContexts()
    clients = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        clients.append(
            await open_client(
                target(tmp_path / name, user),
                policy=RequestPolicy(
                    max_retries=4, backoff_base=0.2, backoff_max=5.0, request_timeout=5
                ),
                deadline=Deadline.after(30),
                tls_contexts=contexts,
            )
        )
    assert contexts.built == 1
    token_client = await open_client(
        target(tmp_path, {"token": "t"}),
        policy=RequestPolicy(max_retries=4, backoff_base=0.2, backoff_max=5.0, request_timeout=5),
        deadline=Deadline.after(30),
        tls_contexts=contexts,
    )
    assert contexts.built == 2  # same CA, no client certificate: another context
    for client in (*clients, token_client):
        await client.close()


async def test_client_certificate_files(tmp_path):
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki/cert.pem").write_bytes(CLIENT.cert_pem)
    (tmp_path / "pki/key.pem").write_bytes(CLIENT.key_pem)
    (tmp_path / "pki/ca.pem").write_bytes(CA.cert_pem)
    t = target(
        tmp_path,
        {"client-certificate": "pki/cert.pem", "client-key": "pki/key.pem"},
        {"server": "https://127.0.0.1:6443", "certificate-authority": "pki/ca.pem"},
    )
    client = await build(t)
    assert client._transport.tls.cert == CLIENT.cert_pem
    assert client._transport.tls.ca == CA.cert_pem
    await client.close()


async def test_token_and_user_agent(tmp_path):
    t = target(tmp_path, {"token": "s3cr3t-token"})
    client = await build(t)
    assert await auth_header(client) == "Bearer s3cr3t-token"
    headers = request_headers(await auth_header(client), "application/json")
    assert ("User-Agent", f"kubeinv/{__version__}") in headers
    await client.close()


async def test_basic_auth(tmp_path):
    t = target(tmp_path, {"username": "admin", "password": "pw"})
    client = await build(t)
    assert await auth_header(client) == "Basic " + b64(b"admin:pw")
    await client.close()


async def test_token_file_whitespace_is_stripped(tmp_path):
    (tmp_path / "token").write_text("file-token\n")
    t = target(tmp_path, {"tokenFile": "token"})
    client = await build(t)
    assert await auth_header(client) == "Bearer file-token"
    await client.close()


async def test_exec_plugin_token_is_used_and_kept_for_redaction(tmp_path, monkeypatch):
    monkeypatch.chdir("/")  # ./plugin.py is the kubeconfig's, not the working directory's
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        f"#!{sys.executable}\nimport json\nprint(json.dumps({{'apiVersion': "
        "'client.authentication.k8s.io/v1', 'kind': 'ExecCredential', "
        "'status': {'token': 'exec-token-123'}}))\n"
    )
    plugin.chmod(0o755)
    t = target(
        tmp_path,
        {"exec": {"apiVersion": V1, "command": "./plugin.py", "interactiveMode": "Never"}},
    )
    client = await build(t)
    assert await auth_header(client) == "Bearer exec-token-123"
    assert "exec-token-123" in client.secrets
    await client.close()
    assert "exec-token-123" in client.secrets  # still known for redaction after close


async def test_exec_plugin_certificate(tmp_path):
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        f"#!{sys.executable}\nimport json\nprint(json.dumps({{'apiVersion': "
        "'client.authentication.k8s.io/v1', 'kind': 'ExecCredential', "
        f"'status': {{'clientCertificateData': {CLIENT.cert_pem.decode()!r}, "
        f"'clientKeyData': {CLIENT.key_pem.decode()!r}}}}}))\n"
    )
    plugin.chmod(0o755)
    t = target(
        tmp_path,
        {"exec": {"apiVersion": V1, "command": str(plugin), "interactiveMode": "Never"}},
    )
    client = await build(t)
    ticket = await client._transport.authorize()
    assert ticket.cert == CLIENT.cert_pem and ticket.authorization is None
    assert CLIENT.key_pem.decode() in client.secrets
    await client.close()


async def test_failing_exec_plugin(tmp_path):
    t = target(
        tmp_path,
        {"exec": {"apiVersion": V1, "command": "./missing-plugin", "interactiveMode": "Never"}},
    )
    with pytest.raises(ExecPluginError, match="missing-plugin"):
        await build(t)


async def test_missing_client_key_file_is_a_broken_context(tmp_path):
    t = target(tmp_path, {"client-certificate": "nope.pem", "client-key": "nope-key.pem"})
    if t.problem:  # targets may already flag the missing file
        with pytest.raises(BrokenContextError):
            await build(t)
        return
    with pytest.raises(BrokenContextError, match="nope"):
        await build(t)


async def test_garbage_key_is_a_broken_context(tmp_path):
    t = target(
        tmp_path,
        {
            "client-certificate-data": b64(CLIENT.cert_pem),
            "client-key-data": b64(
                b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
            ),
        },
    )
    with pytest.raises(BrokenContextError, match="TLS"):
        await build(t)
