"""Redaction hides what is secret, whole, and leaves the rest of a log line readable."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from collector.errors import redact
from collector.kubeconfig import secret_values
from collector.logging_setup import known_secrets, replace_secrets, setup_logging
from collector.targets import targets_from_config

V1 = "client.authentication.k8s.io/v1"


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("AWS_PROFILE", False),
        ("AWS_REGION", False),
        ("KUBECONFIG_CONTEXT", False),
        ("GITHUB_TOKEN", True),
        ("client_secret", True),
        ("DB_PASSWORD", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("API_KEY", True),
        ("GOOGLE_APPLICATION_CREDENTIALS", True),
        ("VAULT_Token", True),
    ],
)
def test_exec_env_values_are_secret_when_their_names_say_so(name: str, secret: bool) -> None:
    user = {"exec": {"apiVersion": V1, "command": "x", "env": [{"name": name, "value": "v4lue"}]}}
    assert ("v4lue" in secret_values(user)) is secret


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("context=default-eu: ok", "context=default-eu: ok"),
        ("https://default.example.com:6443/api", "https://default.example.com:6443/api"),
        ("GET https://10.0.0.1/k8s/default/api", "GET https://10.0.0.1/k8s/default/api"),
        ("kube-default-tok3n-x", "kube-default-tok3n-x"),
        ("token default-tok3n.", "token [REDACTED]."),
        ("answered 'default-tok3n'", "answered '[REDACTED]'"),
        ('{"token": "default-tok3n"}', '{"token": "[REDACTED]"}'),
        ("Bearer default-tok3n", "Bearer [REDACTED]"),
        ("proxy user:pw-secret@host", "proxy user:[REDACTED]@host"),
    ],
)
def test_secrets_are_replaced_whole_only(text: str, expected: str) -> None:
    assert redact(text, ("default-tok3n", "default", "pw-secret")) == expected


def test_log_lines_keep_context_names_and_plugin_answers_readable(tmp_path: Path) -> None:
    doc = {
        "clusters": [{"name": "c", "cluster": {"server": "https://default.example.com"}}],
        "users": [
            {
                "name": "u",
                "user": {
                    "exec": {
                        "apiVersion": V1,
                        "command": "aws",
                        "interactiveMode": "Never",
                        "env": [
                            {"name": "AWS_PROFILE", "value": "default"},
                            {"name": "SESSION_TOKEN", "value": "sess-tok-8e1f"},
                        ],
                    }
                },
            }
        ],
        "contexts": [{"name": "default", "context": {"cluster": "c", "user": "u"}}],
    }
    (target,) = targets_from_config(doc, path=str(tmp_path / "config"))
    assert target.secrets == ("sess-tok-8e1f",)
    replace_secrets(target.secrets)
    stream = io.StringIO()
    handler = setup_logging(stream=stream)
    try:
        log = logging.getLogger("kubeinv.test_redaction")
        log.warning(
            "exec plugin 'aws' answered apiVersion 'default' with sess-tok-8e1f",
            extra={"context": "default"},
        )
    finally:
        logging.getLogger().removeHandler(handler)
    line = stream.getvalue()
    assert "context=default:" in line
    assert "answered apiVersion 'default'" in line
    assert "sess-tok-8e1f" not in line and "[REDACTED]" in line


def test_secrets_of_the_latest_two_loads_are_redacted_and_older_ones_forgotten() -> None:
    # A daemon reloads its kubeconfigs every run; rotated tokens must not pile up for months.
    for load in range(1000):
        replace_secrets([f"rotated-token-{load:04d}", "static-token-abcd"])
    assert set(known_secrets()) == {
        "rotated-token-0999",
        "rotated-token-0998",
        "static-token-abcd",
    }
    stream = io.StringIO()
    handler = setup_logging(stream=stream)
    try:
        logging.getLogger("kubeinv.test_redaction").warning(
            "rotated-token-0998 rotated-token-0999 static-token-abcd"
        )
    finally:
        logging.getLogger().removeHandler(handler)
    assert "token" not in stream.getvalue().replace("[REDACTED]", "")
    replace_secrets([])
    replace_secrets([])
    assert known_secrets() == ()
