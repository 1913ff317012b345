"""API discovery, as ``kubectl api-resources`` sees it, negotiated as client-go negotiates it.

``GET /api`` and ``GET /apis`` are sent with one Accept header listing aggregated discovery v2,
then v2beta1, then plain JSON (an apiserver that does not serve v2 answers with what it can,
never 406). The Content-Type of the answer says which form came back. For the legacy form the
resource list of every group version is fetched concurrently.

A group that cannot be read (a 503 from an aggregated API such as metrics.k8s.io) or that the
aggregated document marks ``Stale`` is named in ``failed_groups`` and has no resources in the
result; every other group is kept.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from collector.errors import ClusterError, NotFoundError, StaleGroupError
from collector.kube.fetching import decoded
from collector.kube.requesting import KubeClient, Response, all_or_first_error
from collector.normalize import (
    decode_aggregated_discovery,
    decode_core_versions,
    decode_group_list,
    decode_resource_list,
)
from collector.records import ApiResourceRecord, DiscoveryMode

DISCOVERY_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)
_MODE_RANK: dict[DiscoveryMode, int] = {"aggregated-v2": 2, "aggregated-v2beta1": 1, "legacy": 0}


@dataclass
class Discovery:
    resources: list[ApiResourceRecord] = field(default_factory=list)
    mode: DiscoveryMode = "legacy"
    failed_groups: list[str] = field(default_factory=list)
    # Why each failed group failed ("<group>/<version>: <error>", "<group>: Stale").
    errors: list[ClusterError] = field(default_factory=list)


def discovery_mode(content_type: str) -> DiscoveryMode:
    """Which form of discovery a response is, from its Content-Type parameters."""
    media, *params = (part.strip() for part in content_type.split(";"))
    values: dict[str, str] = {}
    for param in params:
        name, _, value = param.partition("=")
        values[name.strip().lower()] = value.strip().strip('"')
    if (
        media.lower() == "application/json"
        and values.get("g") == "apidiscovery.k8s.io"
        and values.get("as") == "APIGroupDiscoveryList"
    ):
        if values.get("v") == "v2":
            return "aggregated-v2"
        if values.get("v") == "v2beta1":
            return "aggregated-v2beta1"
    return "legacy"


async def discover_api_resources(client: KubeClient) -> Discovery:
    """Every served resource of every group version, with the preferred flag."""
    core, groups = await all_or_first_error(
        client.get("/api", accept=DISCOVERY_ACCEPT), client.get("/apis", accept=DISCOVERY_ACCEPT)
    )
    core_mode, groups_mode = discovery_mode(core.content_type), discovery_mode(groups.content_type)

    result = Discovery(mode=min(core_mode, groups_mode, key=_MODE_RANK.__getitem__))
    legacy: list[tuple[str, str, bool]] = []  # (group, version, preferred) still to fetch
    for response, mode, is_core in ((core, core_mode, True), (groups, groups_mode, False)):
        if mode != "legacy":
            _add_aggregated(result, response)
        elif is_core:
            versions = decoded(response, decode_core_versions)
            legacy.extend(("", v, i == 0) for i, v in enumerate(versions))
        else:
            for group in decoded(response, decode_group_list):
                legacy.extend((group.name, v, v == group.preferred) for v in group.versions)
    if legacy:
        await _add_legacy(result, client, legacy)
    result.failed_groups = sorted(set(result.failed_groups))
    failed = set(result.failed_groups)
    result.resources = [r for r in result.resources if r.api_group not in failed]
    return result


def _add_aggregated(result: Discovery, response: Response) -> None:
    doc = decoded(response, decode_aggregated_discovery)
    result.resources.extend(doc.resources)
    for group in doc.stale_groups:
        result.failed_groups.append(group)
        result.errors.append(
            StaleGroupError(f"API group {group or 'core'}: marked Stale in aggregated discovery")
        )


async def _add_legacy(
    result: Discovery, client: KubeClient, group_versions: list[tuple[str, str, bool]]
) -> None:
    async def one(group: str, version: str, preferred: bool) -> list[ApiResourceRecord]:
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            response = await client.get(path)
        except NotFoundError:
            return []  # the group version vanished between the two requests
        return decoded(
            response,
            lambda raw: decode_resource_list(
                raw, group=group, version=version, preferred=preferred
            ),
        )

    outcomes = await asyncio.gather(
        *(one(g, v, p) for g, v, p in group_versions), return_exceptions=True
    )
    for (group, _version, _preferred), outcome in zip(group_versions, outcomes, strict=True):
        if isinstance(outcome, ClusterError):
            result.failed_groups.append(group)
            result.errors.append(outcome)
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            result.resources.extend(outcome)
