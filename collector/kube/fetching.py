"""Cluster identity and cluster info: ``/version``, the kube-system UID, cluster services."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from collector.errors import (
    ClusterError,
    ForbiddenError,
    MalformedResponseError,
    NotFoundError,
)
from collector.kube.requesting import KubeClient, Response, all_or_first_error
from collector.normalize import (
    decode_cluster_services,
    decode_namespace_uid,
    decode_version,
    fallback_cluster_id,
)
from collector.records import ClusterIdSource, ClusterServiceRecord, VersionRecord

T = TypeVar("T")

CLUSTER_SERVICE_SELECTOR = "kubernetes.io/cluster-service=true"


def decoded(response: Response, decode: Callable[[bytes], T]) -> T:
    """Run a normalize decoder on a response; its errors name the URL."""
    try:
        return decode(response.body)
    except MalformedResponseError as exc:
        raise MalformedResponseError(f"GET {response.url}: {exc}") from exc
    except (ValueError, TypeError, KeyError) as exc:  # a decoder bug must not kill the run
        raise MalformedResponseError(f"GET {response.url}: undecodable response: {exc}") from exc


async def fetch_version(client: KubeClient) -> VersionRecord:
    return decoded(await client.get("/version"), decode_version)


async def fetch_kube_system_uid(client: KubeClient) -> str:
    return decoded(await client.get("/api/v1/namespaces/kube-system"), decode_namespace_uid)


async def fetch_cluster_services(
    client: KubeClient, *, server_url: str
) -> list[ClusterServiceRecord]:
    """What ``kubectl cluster-info`` lists: kube-system services labelled cluster-service."""
    response = await client.get(
        "/api/v1/namespaces/kube-system/services",
        query=[("labelSelector", CLUSTER_SERVICE_SELECTOR)],
    )
    return decoded(response, lambda raw: decode_cluster_services(raw, server_url=server_url))


@dataclass(frozen=True)
class Identity:
    """Who a cluster is: its ID (and where it came from) and its version."""

    cluster_id: str
    source: ClusterIdSource
    version: VersionRecord
    # Why the kube-system namespace could not be read, when the fallback ID was used.
    uid_error: ClusterError | None = None


async def identify(client: KubeClient, *, server_url: str, ca_bytes: bytes | None) -> Identity:
    """Authenticate and identify: ``/version`` and the kube-system UID, concurrently.

    A kube-system namespace that may not be read (403) or does not exist (404) gives the
    fallback ID (hash of server URL and CA); any other failure fails the identification, since
    a transient error must not invent a second identity for the same cluster.
    """

    async def uid_or_refusal() -> str | ClusterError:
        try:
            return await fetch_kube_system_uid(client)
        except (ForbiddenError, NotFoundError) as exc:
            return exc

    version, uid = await all_or_first_error(fetch_version(client), uid_or_refusal())
    if isinstance(uid, ClusterError):
        return Identity(
            cluster_id=fallback_cluster_id(server_url, ca_bytes),
            source="server-ca-hash",
            version=version,
            uid_error=uid,
        )
    return Identity(cluster_id=uid, source="kube-system-uid", version=version)
