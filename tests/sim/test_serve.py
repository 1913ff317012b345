"""`python -m collector.sim serve` (what `kubeinv sim serve` runs) and scenario files."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest
import yaml

from collector.sim.scenario import ScenarioError, load_scenario, scenario_from_dict

SCENARIO = """
seed = 3
layout = "per-cluster"

[defaults]
nodes = 4

[[cluster]]
name = "prod"
count = 2
flavour = "eks"
version = "v1.29.8"
users = ["cert-data", "token"]

[[cluster]]
name = "flaky"
[cluster.faults]
unavailable = ["metrics.k8s.io"]
status = [ { path = "/api/v1/nodes", status = 429, times = 2, retry_after = 1 } ]

[[cluster]]
name = "down"
server = "closed-port"
"""


def test_scenario_parsing(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO)
    spec = load_scenario(path)
    assert spec.seed == 3 and spec.layout == "per-cluster"
    assert [c.name for c in spec.clusters] == ["prod-1", "prod-2", "flaky", "down"]
    assert spec.clusters[0].flavour == "eks" and spec.clusters[0].users == ("cert-data", "token")
    assert all(c.nodes == 4 for c in spec.clusters)
    assert spec.clusters[2].faults is not None


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"cluster": [{"flavour": "mesos"}]}, "unknown flavour 'mesos'"),
        ({"cluster": [{"version": "latest"}]}, "not a Kubernetes version"),
        ({"cluster": [{"nodez": 3}]}, "unknown keys: nodez"),
        ({"cluster": [{"faults": {"status": [{"path": "/x"}]}}]}, "faults"),
        ({"cluster": [{"name": "a"}, {"name": "a"}]}, "duplicate cluster names: a"),
        ({"clusters": []}, "unknown top-level keys: clusters"),
    ],
)
def test_scenario_errors_name_the_source(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError, match=message) as err:
        scenario_from_dict(doc, source="fleet.toml")
    assert str(err.value).startswith("fleet.toml")


def test_scenario_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[cluster]\n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(path)


async def _wait_ready(proc: asyncio.subprocess.Process, ready: Path) -> None:
    for _ in range(300):
        if await asyncio.to_thread(ready.exists):
            return
        if proc.returncode is not None:
            break
        await asyncio.sleep(0.05)
    out = await proc.stdout.read() if proc.stdout else b""
    raise AssertionError(f"no ready file; output: {out.decode()}")


async def test_serve_until_sigterm(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "out"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collector.sim", "serve",
        "--out", str(out), "--scenario", str(scenario), "--clusters", "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        await _wait_ready(proc, out / "ready")
        summary = json.loads((out / "ready").read_text())
        assert len(summary["clusters"]) == 6
        config = yaml.safe_load((out / "kubeconfig").read_text())
        contexts = {c["name"] for c in config["contexts"]}
        assert {
            "prod-1",
            "prod-1-token",
            "prod-2",
            "flaky",
            "down",
            "sim-000",
            "sim-001",
        } <= contexts
        assert (out / "prod-1.kubeconfig").exists()  # per-cluster layout
        live = next(c for c in summary["clusters"] if c["name"] == "prod-1")
        _, writer = await asyncio.open_connection(
            "127.0.0.1", int(live["server"].rsplit(":", 1)[1])
        )
        writer.close()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 20)
    assert code == 0
    assert not (out / "ready").exists()


async def test_serve_rejects_bad_scenario(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text('[[cluster]]\nflavour = "mesos"\n')
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collector.sim", "serve", "--out", str(tmp_path / "o"),
        "--scenario", str(scenario),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert str(scenario) in err.decode() and "mesos" in err.decode()
