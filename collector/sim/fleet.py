"""A fleet of simulated clusters: HTTPS servers on 127.0.0.1 and the kubeconfigs that reach them.

async with Fleet(FleetSpec.varied(5)) as fleet:
    fleet.kubeconfig_paths        # files to hand to kubeinv or kubectl
    fleet.clusters[0].upgrade("v1.31.2")
    fleet.clusters[1].faults.fail("/api/v1/nodes", 403)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import shutil
import socket
import ssl
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from aiohttp import web

from collector.sim.certs import CertificateAuthority, KeyPair
from collector.sim.cluster import SimCluster, parse_version
from collector.sim.nodes import FLAVOURS
from collector.sim.server import ApiServer

Json = dict[str, Any]

USER_KINDS = ("cert-data", "cert-file", "token", "token-file", "exec", "invalid-token")
SERVER_MODES = ("normal", "closed-port", "no-answer", "foreign-ca")
LAYOUTS = ("single", "per-cluster", "kubeadm")

EXEC_PLUGIN = "exec-plugin.sh"
_EXEC_SCRIPT = """#!/bin/sh
# kubeinv simulator: exec credential plugin. Prints an ExecCredential carrying the token that the
# kubeconfig passes in $SIM_TOKEN (kubectl and client libraries run this as a child process).
printf '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1",'
printf '"spec":{},"status":{"token":"%s"}}\\n' "$SIM_TOKEN"
"""


@dataclass
class ClusterSpec:
    """One simulated cluster.

    users: how its contexts authenticate; the first is the cluster's main context and each
    further entry adds another context reaching the same cluster (kinds: USER_KINDS).
    server: 'normal', or a connection-level fault: 'closed-port' (nothing listens),
    'no-answer' (accepts TCP, never answers), 'foreign-ca' (certificate from another CA).
    host: the loopback address it listens on, '127.0.0.1' or '::1' (URL https://[::1]:port).
    path_prefix: served behind this path, as Rancher serves clusters ('/k8s/clusters/c-1').
    grants: what impersonated users or groups may read (subject -> resource names or '*').
    """

    name: str | None = None
    version: str = "v1.31.2"
    flavour: str = "kubeadm"
    nodes: int = 3
    users: tuple[str, ...] = ("cert-data",)
    server: str = "normal"
    variant: int | None = None  # which optional CRD groups it has; default: its index
    virtual_nodes: int = 0
    latency: float = 0.0
    alpha_apis: bool = False
    faults: Mapping[str, Any] | None = None  # as in a scenario's [cluster.faults] table
    host: str = "127.0.0.1"
    path_prefix: str = ""
    grants: Mapping[str, tuple[str, ...]] | None = None

    def validate(self) -> None:
        parse_version(self.version)
        if self.flavour not in FLAVOURS:
            raise ValueError(f"unknown flavour {self.flavour!r}; one of {', '.join(FLAVOURS)}")
        for kind in self.users:
            if kind not in USER_KINDS:
                raise ValueError(f"unknown user kind {kind!r}; one of {', '.join(USER_KINDS)}")
        if not self.users:
            raise ValueError("a cluster needs at least one user")
        if self.server not in SERVER_MODES:
            raise ValueError(
                f"unknown server mode {self.server!r}; one of {', '.join(SERVER_MODES)}"
            )
        if self.nodes < 0:
            raise ValueError("nodes must be >= 0")
        if self.host not in ("127.0.0.1", "::1"):
            raise ValueError(f"host {self.host!r}: the simulator listens on 127.0.0.1 or ::1")
        if self.path_prefix and (
            not self.path_prefix.startswith("/") or self.path_prefix.endswith("/")
        ):
            raise ValueError(f"path_prefix {self.path_prefix!r}: starts with / and does not end so")


_VARIED_VERSIONS = (
    "v1.31.2",
    "v1.30.6",
    "v1.29.10",
    "v1.28.15",
    "v1.27.16",
    "v1.26.15",
    "v1.32.1",
    "v1.24.17",
)
_VARIED_FLAVOURS = ("kubeadm", "eks", "gke", "aks", "k3s", "openshift", "kind")
_VARIED_USERS = ("cert-data", "token", "cert-file", "token-file", "exec")


@dataclass
class FleetSpec:
    """A fleet: its clusters, the seed of all generated data, and how kubeconfigs are laid out.

    layout 'single': one file `kubeconfig` with every context; 'per-cluster': also one file per
    cluster (`<name>.kubeconfig`); 'kubeadm': also one `<name>/admin.conf` per cluster whose
    context is `kubernetes-admin@kubernetes`, as kubeadm writes it. `kubeconfig` is always written.
    out_dir: where files go (default: a temporary directory removed on exit).
    """

    clusters: list[ClusterSpec] = field(default_factory=lambda: [ClusterSpec()])
    seed: int = 0
    layout: str = "single"
    out_dir: Path | None = None

    @classmethod
    def varied(
        cls,
        count: int,
        *,
        seed: int = 0,
        nodes: int = 5,
        layout: str = "single",
        out_dir: Path | None = None,
    ) -> FleetSpec:
        """`count` healthy clusters cycling through flavours, versions and user kinds."""
        clusters = [
            ClusterSpec(
                name=f"sim-{i:03d}",
                version=_VARIED_VERSIONS[i % len(_VARIED_VERSIONS)],
                flavour=_VARIED_FLAVOURS[i % len(_VARIED_FLAVOURS)],
                nodes=nodes,
                users=(_VARIED_USERS[i % len(_VARIED_USERS)],),
                virtual_nodes=1 if _VARIED_FLAVOURS[i % len(_VARIED_FLAVOURS)] == "aks" else 0,
            )
            for i in range(count)
        ]
        return cls(clusters=clusters, seed=seed, layout=layout, out_dir=out_dir)


@dataclass
class ContextInfo:
    """A context written into the fleet's kubeconfigs."""

    name: str
    cluster: str
    user_kind: str
    path: Path  # the file holding it (the layout's file; also present in `kubeconfig`)


class Fleet:
    """Starts the clusters of a FleetSpec on 127.0.0.1; an async context manager."""

    def __init__(self, spec: FleetSpec | None = None) -> None:
        self.spec = spec or FleetSpec()
        if self.spec.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {self.spec.layout!r}; one of {', '.join(LAYOUTS)}")
        for c in self.spec.clusters:
            c.validate()
        names = [c.name or f"sim-{i:03d}" for i, c in enumerate(self.spec.clusters)]
        if len(set(names)) != len(names):
            raise ValueError("cluster names must be unique")
        self._names = names
        self.clusters: list[SimCluster] = []
        self.contexts: list[ContextInfo] = []
        self.kubeconfig_paths: list[Path] = []
        self.dir = Path()
        self.ca: CertificateAuthority | None = None
        self._own_dir = False
        self._servers: list[asyncio.AbstractServer] = []
        self._handlers: list[ApiServer] = []
        self._lowlevel: list[web.Server] = []
        self._silent: set[asyncio.StreamWriter] = set()

    @property
    def kubeconfig(self) -> Path:
        """The file holding every context of the fleet."""
        return self.dir / "kubeconfig"

    @property
    def ca_path(self) -> Path:
        return self.dir / "pki" / "ca.crt"

    def client_ssl_context(self, *, client_cert: bool = True) -> ssl.SSLContext:
        """An SSL context trusting the fleet CA, presenting the admin client certificate."""
        ctx = ssl.create_default_context(cafile=str(self.ca_path))
        if client_cert:
            ctx.load_cert_chain(self.dir / "pki" / "admin.crt", self.dir / "pki" / "admin.key")
        return ctx

    def cluster(self, name: str) -> SimCluster:
        for c in self.clusters:
            if c.name == name:
                return c
        raise KeyError(f"no cluster {name!r} in this fleet")

    async def __aenter__(self) -> Fleet:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        spec = self.spec
        ssl_ctx, foreign_ctx = self._prepare_files()
        assert self.ca is not None
        client = self.ca.issue_client("kubernetes-admin", ("system:masters",))
        loop = asyncio.get_running_loop()
        for index, (cspec, name) in enumerate(zip(spec.clusters, self._names, strict=True)):
            cluster = SimCluster(
                name,
                version=cspec.version,
                flavour=cspec.flavour,
                node_count=cspec.nodes,
                seed=spec.seed,
                variant=index if cspec.variant is None else cspec.variant,
                virtual_nodes=cspec.virtual_nodes,
                alpha_apis=cspec.alpha_apis,
            )
            cluster.faults.latency = cspec.latency
            if cspec.faults:
                cluster.faults.configure(cspec.faults)
            cluster.path_prefix = cspec.path_prefix
            for subject, resources in (cspec.grants or {}).items():
                cluster.grants[subject] = frozenset(resources)
            self.clusters.append(cluster)
            port = await self._listen(loop, cluster, cspec, ssl_ctx, foreign_ctx)
            host = f"[{cspec.host}]" if ":" in cspec.host else cspec.host
            cluster.server_url = f"https://{host}:{port}{cspec.path_prefix}"
        self._write_kubeconfigs(client)

    def _prepare_files(self) -> tuple[ssl.SSLContext, ssl.SSLContext | None]:
        """Create the output folder, the fleet CA and the serving certificates."""
        spec = self.spec
        if spec.out_dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="kubeinv-sim-"))
            self._own_dir = True
        else:
            self.dir = Path(spec.out_dir).absolute()
            self.dir.mkdir(parents=True, exist_ok=True)
        pki = self.dir / "pki"
        pki.mkdir(exist_ok=True)
        self.ca = CertificateAuthority.generate("kubeinv-sim-ca")
        _write(pki / "ca.crt", self.ca.cert_pem)
        server_pair = self.ca.issue_server()
        _write(pki / "apiserver.crt", server_pair.cert_pem)
        _write(pki / "apiserver.key", server_pair.key_pem, private=True)
        ssl_ctx = _server_context(pki / "apiserver.crt", pki / "apiserver.key", pki / "ca.crt")
        foreign_ctx: ssl.SSLContext | None = None
        if any(c.server == "foreign-ca" for c in spec.clusters):
            foreign = CertificateAuthority.generate("foreign-ca")
            pair = foreign.issue_server()
            _write(pki / "foreign-apiserver.crt", pair.cert_pem)
            _write(pki / "foreign-apiserver.key", pair.key_pem, private=True)
            foreign_ctx = _server_context(
                pki / "foreign-apiserver.crt", pki / "foreign-apiserver.key", pki / "ca.crt"
            )
        return ssl_ctx, foreign_ctx

    async def _listen(
        self,
        loop: asyncio.AbstractEventLoop,
        cluster: SimCluster,
        cspec: ClusterSpec,
        ssl_ctx: ssl.SSLContext,
        foreign_ctx: ssl.SSLContext | None,
    ) -> int:
        mode, host = cspec.server, cspec.host
        if mode == "closed-port":
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port: int = sock.getsockname()[1]
            return port
        if mode == "no-answer":
            server = await asyncio.start_server(self._swallow, host, 0)
        else:
            handler = ApiServer(cluster)
            self._handlers.append(handler)
            lowlevel = web.Server(handler, access_log=None)
            self._lowlevel.append(lowlevel)
            ctx = foreign_ctx if mode == "foreign-ca" and foreign_ctx else ssl_ctx

            def accept(lowlevel: web.Server = lowlevel) -> asyncio.BaseProtocol:
                cluster.connections += 1  # counts the connections (and TLS handshakes) clients open
                return lowlevel()

            server = await loop.create_server(accept, host, 0, ssl=ctx, backlog=512)
        self._servers.append(server)
        sockname = server.sockets[0].getsockname()
        return int(sockname[1])

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Accept the connection and never answer; hold it until the client or the fleet closes."""
        self._silent.add(writer)
        try:
            while await reader.read(65536):
                pass
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._silent.discard(writer)
            writer.close()

    async def stop(self) -> None:
        for handler in self._handlers:
            handler.release_hung()
        for writer in list(self._silent):
            writer.close()
        for server in self._servers:
            server.close()
        for lowlevel in self._lowlevel:
            await lowlevel.shutdown(0.5)
        for server in self._servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2)
        self._servers.clear()
        self._handlers.clear()
        self._lowlevel.clear()
        if self._own_dir and self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- kubeconfigs -------------------------------------------------------------------------

    def _write_kubeconfigs(self, client: KeyPair) -> None:
        assert self.ca is not None
        ca_data = base64.b64encode(self.ca.cert_pem).decode()
        _write(self.dir / "pki" / "admin.crt", client.cert_pem)
        _write(self.dir / "pki" / "admin.key", client.key_pem, private=True)
        tokens_dir = self.dir / "tokens"
        tokens_dir.mkdir(exist_ok=True)
        rng = random.Random(f"{self.spec.seed}/tokens")
        everything: Json = _empty_config()
        per_file: list[tuple[Path, Json]] = []
        for cspec, cluster in zip(self.spec.clusters, self.clusters, strict=True):
            file_doc = _empty_config()
            kubeadm = self.spec.layout == "kubeadm"
            if self.spec.layout == "per-cluster":
                path = self.dir / f"{cluster.name}.kubeconfig"
            elif kubeadm:
                path = self.dir / cluster.name / "admin.conf"
            else:
                path = self.kubeconfig
            cluster_entry = {"certificate-authority-data": ca_data, "server": cluster.server_url}
            _add(everything, "clusters", cluster.name, {"cluster": cluster_entry})
            _add(
                file_doc,
                "clusters",
                "kubernetes" if kubeadm else cluster.name,
                {"cluster": cluster_entry},
            )
            for i, kind in enumerate(cspec.users):
                token = f"{rng.getrandbits(24):06x}.{rng.getrandbits(64):016x}"
                if kind != "invalid-token":
                    cluster.tokens[token] = f"system:serviceaccount:kube-system:sim-{kind}"
                ctx_name = cluster.name if i == 0 else f"{cluster.name}-{kind}"
                user_name = f"{cluster.name}-{kind}"
                rel_base = self.dir if not kubeadm else path.parent
                user = self._user(
                    kind=kind,
                    token=token,
                    cluster=cluster.name,
                    base=rel_base,
                    tokens_dir=tokens_dir,
                    client=client,
                )
                _add_user_context(everything, ctx_name, cluster.name, user_name, user)
                if kubeadm:
                    kubeadm_user = "kubernetes-admin" if i == 0 else f"{kind}"
                    kctx = f"{kubeadm_user}@kubernetes"
                    _add_user_context(file_doc, kctx, "kubernetes", kubeadm_user, user)
                    self.contexts.append(ContextInfo(kctx, cluster.name, kind, path))
                else:
                    _add_user_context(file_doc, ctx_name, cluster.name, user_name, user)
                    self.contexts.append(ContextInfo(ctx_name, cluster.name, kind, path))
            file_doc["current-context"] = file_doc["contexts"][0]["name"]
            if self.spec.layout != "single":
                per_file.append((path, file_doc))
        if everything["contexts"]:
            everything["current-context"] = everything["contexts"][0]["name"]
        _write_exec_plugin(self.dir)
        _write(self.kubeconfig, _dump_yaml(everything).encode(), private=True)
        for path, doc in per_file:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.parent != self.dir:
                _write_exec_plugin(path.parent)
            _write(path, _dump_yaml(doc).encode(), private=True)
        self.kubeconfig_paths = [p for p, _ in per_file] if per_file else [self.kubeconfig]

    def _user(
        self,
        *,
        kind: str,
        token: str,
        cluster: str,
        base: Path,
        tokens_dir: Path,
        client: KeyPair,
    ) -> Json:
        if kind == "cert-data":
            return {
                "client-certificate-data": base64.b64encode(client.cert_pem).decode(),
                "client-key-data": base64.b64encode(client.key_pem).decode(),
            }
        if kind == "cert-file":
            return {
                "client-certificate": os.path.relpath(self.dir / "pki" / "admin.crt", base),
                "client-key": os.path.relpath(self.dir / "pki" / "admin.key", base),
            }
        if kind in ("token", "invalid-token"):
            return {"token": token}
        if kind == "token-file":
            token_path = tokens_dir / f"{cluster}.token"
            _write(token_path, token.encode() + b"\n", private=True)  # files end with a newline
            return {"tokenFile": os.path.relpath(token_path, base)}
        if kind == "exec":
            return {
                "exec": {
                    "apiVersion": "client.authentication.k8s.io/v1beta1",
                    "command": f"./{EXEC_PLUGIN}",
                    "args": [cluster],
                    "env": [{"name": "SIM_TOKEN", "value": token}],
                    "interactiveMode": "Never",
                    "provideClusterInfo": False,
                }
            }
        raise ValueError(kind)


def _dump_yaml(doc: Json) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: 20x faster on big fleets
    return yaml.dump(doc, Dumper=dumper, sort_keys=False)


def _empty_config() -> Json:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [],
        "users": [],
        "contexts": [],
    }


def _add(doc: Json, section: str, name: str, body: Json) -> None:
    doc[section].append({"name": name, **body})


def _add_user_context(doc: Json, context: str, cluster: str, user_name: str, user: Json) -> None:
    """A user entry and the context that pairs it with ``cluster``."""
    _add(doc, "users", user_name, {"user": user})
    _add(doc, "contexts", context, {"context": {"cluster": cluster, "user": user_name}})


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def _write_exec_plugin(directory: Path) -> None:
    script = directory / EXEC_PLUGIN
    script.write_text(_EXEC_SCRIPT)
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _server_context(cert: Path, key: Path, ca: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(cafile=str(ca))
    ctx.verify_mode = ssl.CERT_OPTIONAL  # client certificates are one way to authenticate
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
