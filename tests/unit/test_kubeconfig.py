"""One context's meaning (collector.kubeconfig): each rule on its own, without a disk."""

from __future__ import annotations

import pytest

from collector.kubeconfig import (
    cluster_problems,
    impersonation_headers,
    inline_token_file,
    interpret,
    resolve_user,
    user_problems,
)

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"


def reader(files: dict[str, bytes]):
    def read(path: str) -> bytes:
        try:
            return files[path]
        except KeyError:
            raise FileNotFoundError(2, "No such file or directory", path) from None

    return read


@pytest.mark.parametrize(
    ("command", "resolved"),
    [
        ("bin/plugin", "/etc/kube/bin/plugin"),
        ("./plugin", "/etc/kube/plugin"),
        ("../plugin", "/etc/plugin"),
        ("/usr/bin/plugin", "/usr/bin/plugin"),
        ("aws", "aws"),  # a bare name is looked up on PATH when it runs
    ],
)
def test_exec_command_resolved_against_the_kubeconfig_directory(command: str, resolved: str):
    user = resolve_user({"exec": {"apiVersion": V1, "command": command}}, "/etc/kube")
    assert user["exec"]["command"] == resolved


@pytest.mark.parametrize(
    ("content", "token"),
    [(b"tok\n", "tok"), (b"  tok \r\n\n", "tok"), (b"\ttok", "tok")],
)
def test_token_file_is_inlined_stripped(content: bytes, token: str):
    user = {"tokenFile": "/t"}
    assert inline_token_file(user, reader({"/t": content})) == []
    assert user == {"token": token}


def test_token_file_problems_and_inline_token_precedence():
    assert inline_token_file({"tokenFile": "/t"}, reader({"/t": b" \n"})) == [
        "tokenFile /t is empty"
    ]
    assert "No such file" in inline_token_file({"tokenFile": "/t"}, reader({}))[0]
    user = {"token": "inline", "tokenFile": "/t"}
    assert inline_token_file(user, reader({})) == []  # the file is not even read
    assert user == {"token": "inline"}


def test_impersonation_headers_as_client_go_sends_them():
    headers = impersonation_headers(
        {
            "as": "jane",
            "as-uid": "42",
            "as-groups": ["a", "b"],
            "as-user-extra": {"scopes": ["x", "y"], "example.com/team é": ["blue"]},
        }
    )
    assert headers == (
        ("Impersonate-User", "jane"),
        ("Impersonate-Uid", "42"),
        ("Impersonate-Group", "a"),
        ("Impersonate-Group", "b"),
        ("Impersonate-Extra-example.com%2Fteam%20%C3%A9", "blue"),
        ("Impersonate-Extra-scopes", "x"),
        ("Impersonate-Extra-scopes", "y"),
    )
    assert impersonation_headers({"token": "t"}) == ()


@pytest.mark.parametrize(
    ("cluster", "problem"),
    [
        ({}, "cluster 'c' has no server"),
        (
            {
                "server": "https://x",
                "insecure-skip-tls-verify": True,
                "certificate-authority": "/ca",
            },
            "specifying a root certificates file with the insecure flag is not allowed",
        ),
        ({"server": "https://x", "proxy-url": "socks4://p:1"}, 'unsupported scheme "socks4"'),
    ],
)
def test_cluster_refusals(cluster, problem):
    assert any(problem in p for p in cluster_problems("c", cluster))


@pytest.mark.parametrize(
    "cluster",
    [
        {"server": "https://x", "insecure-skip-tls-verify": True},
        {"server": "https://x", "proxy-url": "socks5://127.0.0.1:1080"},
        {"server": "https://x", "proxy-url": "https://proxy:3128"},
        {"server": "https://x", "certificate-authority-data": "Zm9v"},
    ],
)
def test_clusters_kubectl_accepts(cluster):
    assert cluster_problems("c", cluster) == []


@pytest.mark.parametrize(
    "user",
    [
        {"token": "t"},
        {"tokenFile": "/t"},
        {"username": "a", "password": "b"},
        {"client-certificate-data": "Zm9v", "client-key-data": "Zm9v"},
        {"exec": {"apiVersion": V1BETA1, "command": "x"}},  # v1beta1 defaults IfAvailable
        {"exec": {"apiVersion": V1, "command": "x", "interactiveMode": "Never"}},
        {"token": "t", "exec": {"apiVersion": V1BETA1, "command": "x"}},  # kubectl accepts it
        {"as": "jane", "as-groups": ["g"]},
    ],
)
def test_users_kubectl_accepts(user):
    assert user_problems("u", user) == []


def test_interpret_names_missing_entries_and_never_reads_for_them():
    meaning = interpret(
        {"cluster": "ghost", "user": ""}, clusters={}, users={}, read_file=reader({})
    )
    assert meaning.problems == ("cluster 'ghost' is not defined", "the context names no user")
    assert meaning.cluster is None and meaning.user is None and meaning.server is None
