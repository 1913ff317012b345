# ruff: noqa: ASYNC240
"""Building clients from targets: auth material, exec plugins, temp files, User-Agent.

No request is sent here; requests over HTTPS are tested against the simulator.
"""

import base64
import os
import stat
import sys
from pathlib import Path

import pytest

from collector import __version__
from collector.errors import BrokenContextError, ExecPluginError
from collector.kube.clients import CredentialFiles, open_client
from collector.kube.policy import Deadline, RequestPolicy
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


async def build(t, files=None):
    return await open_client(
        t,
        policy=RequestPolicy(request_timeout=5),
        deadline=Deadline.after(30),
        credential_files=files,
    )


async def auth_header(client) -> str | None:
    settings = await client._api.configuration.auth_settings()
    return settings.get("BearerToken", {}).get("value")


async def test_client_certificate_data_goes_to_private_files_removed_after(tmp_path):
    t = target(
        tmp_path,
        {"client-certificate-data": b64(CLIENT.cert_pem), "client-key-data": b64(CLIENT.key_pem)},
    )
    with CredentialFiles() as files:
        client = await build(t, files)
        config = client._api.configuration
        assert os.path.dirname(config.key_file) == files.path
        assert Path(config.key_file).read_bytes() == CLIENT.key_pem
        assert stat.S_IMODE(os.stat(config.key_file).st_mode) == 0o600
        assert client.server_url == "https://127.0.0.1:6443"
        assert await auth_header(client) is None
        await client.close()
    assert not Path(files.path).exists()
    # the loader's content cache must not point at removed files: a second run works
    with CredentialFiles() as files2:
        client = await build(t, files2)
        assert Path(client._api.configuration.key_file).exists()
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
    assert client._api.configuration.cert_file == str(tmp_path / "pki/cert.pem")
    await client.close()


async def test_token_and_user_agent(tmp_path):
    t = target(tmp_path, {"token": "s3cr3t-token"})
    client = await build(t)
    assert await auth_header(client) == "Bearer s3cr3t-token"
    assert client._api.user_agent == f"kubeinv/{__version__}"
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
    with CredentialFiles() as files:
        client = await build(t, files)
        assert Path(client._api.configuration.cert_file).read_bytes() == CLIENT.cert_pem
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
    with CredentialFiles() as files, pytest.raises(BrokenContextError, match="TLS"):
        await build(t, files)
