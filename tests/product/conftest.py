"""Helpers for the product tests: run the real `kubeinv` command in a subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def clean_env(tmp_path: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment without any KUBEINV_* or KUBECONFIG of the caller, HOME in tmp_path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KUBEINV_") and k not in ("KUBECONFIG", "XDG_DATA_HOME")
    }
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env["HOME"] = str(home)
    env["PYTHONPATH"] = str(REPO)
    env.update(extra or {})
    return env


def kubeinv(
    *args: str,
    env: Mapping[str, str],
    timeout: float = 120,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", *args],
        env=dict(env),
        cwd=str(cwd or REPO),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return clean_env(tmp_path)


def write_kubeconfig(
    path: Path, contexts: Mapping[str, str], *, token: str = "t0ken-value"
) -> Path:
    """A kubeconfig whose contexts point at closed local ports (no network is needed)."""
    clusters = "\n".join(
        f"- name: {name}\n  cluster: {{server: '{server}'}}" for name, server in contexts.items()
    )
    ctxs = "\n".join(
        f"- name: {name}\n  context: {{cluster: {name}, user: u}}" for name in contexts
    )
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"current-context: {next(iter(contexts))}\n"
        f"clusters:\n{clusters}\n"
        f"users:\n- name: u\n  user: {{token: {token}}}\n"
        f"contexts:\n{ctxs}\n"
    )
    return path


async def kubeinv_async(
    *args: str, env: dict[str, str], within: float = 180
) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess, without blocking the loop that serves the simulator."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "collector",
        *args,
        env=env,
        cwd=str(REPO),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), within)
    assert proc.returncode is not None
    return subprocess.CompletedProcess(list(args), proc.returncode, out.decode(), err.decode())
