"""docker-compose.yml, the Dockerfile, Grafana provisioning and the Kubernetes manifests.

No Docker engine runs here, so the structure is checked: images, healthcheck, depends_on with a
condition, environment, mounts, and that every provisioned file exists and parses. The
dashboard's SQL is also run against the real schema (see test_dashboard_sql.py).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.settings import load_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(doc, dict)
    return doc


def _host_path(volume: str) -> Path | None:
    source = volume.split(":", 1)[0]
    return REPO / source if source.startswith(".") else None


def test_three_services_with_pinned_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "collector", "grafana"}
    assert re.fullmatch(r"postgres:\d+(\.\d+)?-alpine", services["postgres"]["image"])
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", services["grafana"]["image"])
    assert services["collector"]["build"] == "."
    for service in services.values():
        assert ":latest" not in service["image"] or "build" in service


def test_postgres_has_a_volume_and_a_healthcheck(compose: dict[str, Any]) -> None:
    pg = compose["services"]["postgres"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in pg["volumes"])
    named = pg["volumes"][0].split(":", 1)[0]
    assert named in compose["volumes"]
    check = pg["healthcheck"]
    assert check["test"][0] == "CMD-SHELL" and "pg_isready" in check["test"][1]
    assert {"interval", "timeout", "retries"} <= set(check)
    assert pg["environment"]["POSTGRES_DB"] == "kubeinv"


def test_collector_waits_for_healthy_postgres_and_mounts_kubeconfigs_read_only(
    compose: dict[str, Any],
) -> None:
    collector = compose["services"]["collector"]
    assert collector["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert collector["command"] == ["run"]
    mounts = collector["volumes"]
    assert "./config/kubeconfigs:/etc/kubeinv/kubeconfigs:ro" in mounts
    kubeconfigs = REPO / "config" / "kubeconfigs"
    assert kubeconfigs.is_dir()
    # Everything in the mounted directory that is not hidden is read as a kubeconfig.
    tracked = subprocess.run(
        ["git", "ls-files", "config/kubeconfigs"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(name).name.startswith(".") for name in tracked), tracked
    environment = collector["environment"]
    assert environment["KUBEINV_DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/kubeinv" in environment["KUBEINV_DATABASE_URL"]
    assert environment["KUBEINV_KUBECONFIGS"] == "/etc/kubeinv/kubeconfigs"
    assert environment["KUBEINV_METRICS__HOST"] == "0.0.0.0"


def test_collector_environment_is_valid_kubeinv_settings(compose: dict[str, Any]) -> None:
    environment = {
        k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v))
        for k, v in compose["services"]["collector"]["environment"].items()
    }
    settings = load_settings({}, environ=environment)
    assert settings.database_url == "postgresql://kubeinv:kubeinv@postgres:5432/kubeinv"
    assert settings.kubeconfigs == ["/etc/kubeinv/kubeconfigs"]
    assert settings.schedule.interval == "15m"
    assert settings.metrics.port == 9108
    assert settings.log.format == "json"


def test_grafana_provisioning_files_exist_and_parse(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    assert grafana["depends_on"]["postgres"]["condition"] == "service_healthy"
    host_dirs = [p for p in map(_host_path, grafana["volumes"]) if p is not None]
    assert host_dirs, "grafana mounts nothing from the repository"
    for path in host_dirs:
        assert path.is_dir(), path
    provisioning = REPO / "deploy/grafana/provisioning"
    datasources = yaml.safe_load((provisioning / "datasources/kubeinv.yaml").read_text())
    (ds,) = datasources["datasources"]
    assert ds["type"] == "grafana-postgresql-datasource"
    assert ds["uid"] == "kubeinv"
    assert ds["url"] == "postgres:5432"
    assert ds["jsonData"]["database"] == "kubeinv"
    providers = yaml.safe_load((provisioning / "dashboards/kubeinv.yaml").read_text())
    (provider,) = providers["providers"]
    dashboards_in_container = provider["options"]["path"]
    mounted = {v.split(":")[1]: _host_path(v) for v in grafana["volumes"]}
    assert dashboards_in_container in mounted
    files = list(mounted[dashboards_in_container].glob("*.json"))  # type: ignore[union-attr]
    assert files


def dashboard() -> dict[str, Any]:
    data = json.loads((REPO / "deploy/grafana/dashboards/kubeinv-fleet.json").read_text())
    assert isinstance(data, dict)
    return data


def test_dashboard_shows_versions_nodes_and_capacity_from_the_views() -> None:
    dash = dashboard()
    assert dash["uid"] == "kubeinv-fleet"
    sql = "\n".join(
        t["rawSql"] for p in dash["panels"] for t in p.get("targets", []) if "rawSql" in t
    )
    for view in ("cluster_current", "fleet_versions_daily", "capacity_daily"):
        assert f"inventory.{view}" in sql
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    assert "version" in titles and "nodes" in titles and "capacity" in titles
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "kubeinv"
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])


def test_dockerfile_is_slim_and_non_root() -> None:
    text = (REPO / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert froms and all(f.startswith("python:3.11-slim") for f in froms)
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["kubeinv"]' in text
    for copied in re.findall(r"^COPY (?!--from)(\S+)", text, re.MULTILINE):
        assert (REPO / copied).exists(), copied


def _manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((REPO / "deploy/kubernetes").glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def test_cluster_role_is_least_privilege() -> None:
    (role,) = [d for d in _manifests() if d["kind"] == "ClusterRole"]
    rules = {
        (
            tuple(r.get("apiGroups", [])),
            tuple(r.get("resources", r.get("nonResourceURLs", []))),
        ): set(r["verbs"])
        for r in role["rules"]
    }
    assert rules == {
        (("",), ("nodes",)): {"get", "list"},
        (("",), ("namespaces",)): {"get"},
        (("",), ("services",)): {"list"},
        ((), ("/version", "/api", "/api/*", "/apis", "/apis/*")): {"get"},
    }


def test_binding_service_account_and_workloads_fit_together() -> None:
    docs = _manifests()
    kinds = {d["kind"] for d in docs}
    assert {"ServiceAccount", "ClusterRoleBinding", "Deployment", "CronJob"} <= kinds
    (sa,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    (binding,) = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    (role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": sa["metadata"]["name"],
            "namespace": sa["metadata"]["namespace"],
        }
    ]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == sa["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["args"][:2] == ["run", "--in-cluster"]
    # Alive while it waits for the database; ready once it can collect.
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    (cron,) = [d for d in docs if d["kind"] == "CronJob"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    job_pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert job_pod["containers"][0]["args"][:2] == ["collect", "--in-cluster"]
