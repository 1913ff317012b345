"""Listing nodes page by page (``limit`` + ``continue``), restarting on an expired token.

Each page is decoded and normalized as soon as it arrives and its raw bytes are dropped, so the
memory held by raw JSON is bounded by the page size, not by the size of the cluster.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from collector.errors import GoneError
from collector.kube.fetching import decoded
from collector.kube.requesting import KubeClient, Query
from collector.normalize import decode_node_page
from collector.records import NodeRecord

logger = logging.getLogger(__name__)

NODES_PATH = "/api/v1/nodes"


@dataclass
class NodeListing:
    nodes: list[NodeRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # nodes skipped, fields that were bad
    pages: int = 0
    restarts: int = 0  # times the list restarted after a 410 (expired continue token)


async def list_nodes_paged(
    client: KubeClient, *, page_size: int = 500, max_restarts: int = 3
) -> NodeListing:
    """Every node of the cluster. ``page_size`` 0 asks for the whole list at once.

    A 410 Gone in the middle of the list means the continue token expired (etcd compacted past
    the list's snapshot): the list starts over, at most ``max_restarts`` times, like client-go's
    pager does, but paged again rather than as one unbounded list.
    """
    restarts = 0
    while True:
        listing = NodeListing(restarts=restarts)
        token: str | None = None
        try:
            while True:
                query: Query = [("limit", page_size)] if page_size > 0 else []
                if token:
                    query = [*query, ("continue", token)]
                page = decoded(await client.get(NODES_PATH, query=query), decode_node_page)
                listing.pages += 1
                listing.nodes.extend(page.nodes)
                listing.problems.extend(page.problems)
                token = page.continue_token
                if not token:
                    return listing
        except GoneError:
            if token is None or restarts >= max_restarts:
                raise
            restarts += 1
            logger.info(
                "node list of %s: continue token expired after %d pages, restarting (%d/%d)",
                client.server_url,
                listing.pages,
                restarts,
                max_restarts,
            )
