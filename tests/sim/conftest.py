"""Helpers for the simulator's own tests: raw HTTPS requests with aiohttp."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec

from collector.sim import Fleet, SimCluster


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


async def get(
    fleet: Fleet,
    cluster: SimCluster,
    path: str,
    *,
    accept: str = "application/json",
    token: str | None = None,
    client_cert: bool = True,
    seconds: float = 10,
) -> Reply:
    headers = {"Accept": accept}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    ssl_ctx = fleet.client_ssl_context(client_cert=client_cert and token is None)
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds)) as session,
        session.get(cluster.server_url + path, headers=headers, ssl=ssl_ctx) as resp,
    ):
        return Reply(resp.status, await resp.read(), dict(resp.headers))
