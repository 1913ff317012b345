"""`--in-cluster`: the pod's service account as one more target, against the simulator."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from collector.sim import ClusterSpec, FleetSpec

from .conftest import clean_env, kubeinv_async, write_kubeconfig


async def test_in_cluster_target_is_collected_with_the_service_account(
    sim_fleet: Callable[..., object], tmp_path: Path
) -> None:
    fleet = await sim_fleet(  # type: ignore[misc]
        FleetSpec(clusters=[ClusterSpec(name="home", nodes=2, users=("token",))])
    )
    doc = yaml.safe_load(fleet.kubeconfig.read_text())
    token = doc["users"][0]["user"]["token"]
    server = urlsplit(doc["clusters"][0]["cluster"]["server"])
    # What the kubelet mounts into a pod.
    sa_dir = tmp_path / "serviceaccount"
    sa_dir.mkdir()
    (sa_dir / "token").write_text(token)
    shutil.copy(fleet.ca_path, sa_dir / "ca.crt")
    other = write_kubeconfig(tmp_path / "other.yaml", {"elsewhere": "https://127.0.0.1:1"})
    env = clean_env(
        tmp_path,
        {
            "KUBERNETES_SERVICE_HOST": server.hostname or "",
            "KUBERNETES_SERVICE_PORT": str(server.port),
            "KUBEINV_SERVICE_ACCOUNT_DIR": str(sa_dir),
        },
    )
    result = await kubeinv_async(
        "collect",
        "--dry-run",
        "-o",
        "json",
        "--in-cluster",
        "--kubeconfig",
        str(other),
        "--timeout",
        "2",
        env=env,
    )
    assert result.returncode == 1, result.stderr  # 'elsewhere' is down
    out = json.loads(result.stdout)
    by_context = {o["context_name"]: o for o in out["outcomes"]}
    assert by_context["elsewhere"]["status"] == "failed"
    (own,) = [o for name, o in by_context.items() if name != "elsewhere"]
    assert own["status"] == "ok", own
    (inventory,) = out["inventories"]
    assert len(inventory["nodes"]) == 2
    assert token not in result.stdout + result.stderr


async def test_in_cluster_outside_a_pod_is_a_usage_error(tmp_path: Path) -> None:
    env = clean_env(tmp_path, {"KUBEINV_SERVICE_ACCOUNT_DIR": str(tmp_path / "none")})
    result = await kubeinv_async("collect", "--dry-run", "--in-cluster", env=env)
    assert result.returncode == 2
    assert "--in-cluster: not running in a Kubernetes pod" in result.stderr
