"""Listing nodes page by page (``limit`` + ``continue``), restarting on an expired token.

Each page is decoded and normalized as soon as it arrives and its raw bytes are dropped, so the
memory held by raw JSON is bounded by the page size, not by the size of the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass, field

import msgspec

from collector.errors import GoneError, MalformedResponseError
from collector.kube.fetching import decoded
from collector.kube.requesting import KubeClient, Query, Response
from collector.logging_setup import get_logger
from collector.normalize import decode_node_page
from collector.records import NodeRecord

logger = get_logger(__name__)

NODES_PATH = "/api/v1/nodes"


@dataclass
class NodeListing:
    nodes: list[NodeRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # nodes skipped, fields that were bad
    pages: int = 0
    restarts: int = 0  # times the list restarted after a 410 (expired continue token)


class _ListMeta(msgspec.Struct):
    continue_: str | None = msgspec.field(default=None, name="continue")


class _ListHead(msgspec.Struct):
    metadata: _ListMeta | None = None


_head_decoder = msgspec.json.Decoder(_ListHead)
# What the apiserver writes before a list's items: optional kind and apiVersion, then metadata.
_LIST_PREFIX = re.compile(
    rb'\s*\{\s*(?:"(?:kind|apiVersion)"\s*:\s*"[^"\\]*"\s*,\s*)*"metadata"\s*:\s*'
)
_PEEK_BYTES = 4096
_json_head = json.JSONDecoder()


def peek_continue(raw: bytes) -> str | None:
    """The continue token of a list, without building its items.

    The apiserver writes ``metadata`` before ``items``: when the page starts that way, only its
    first few KiB are read. Otherwise msgspec scans the whole page (skipping, not building, the
    items; ~1.9 ms for 500 nodes). The full decode of the page checks the token either way.
    """
    match = _LIST_PREFIX.match(raw, 0, _PEEK_BYTES)
    if match is not None:
        text = raw[match.end() : match.end() + _PEEK_BYTES].decode("utf-8", "replace")
        try:
            meta, _end = _json_head.raw_decode(text)
        except ValueError:
            meta = None
        if isinstance(meta, dict):
            token = meta.get("continue")
            if token is None or isinstance(token, str):
                return token
    try:
        head = _head_decoder.decode(raw)
    except msgspec.MsgspecError:
        return None  # the full decode reports what is wrong
    return head.metadata.continue_ if head.metadata else None


async def list_nodes_paged(
    client: KubeClient, *, page_size: int = 500, max_restarts: int = 3
) -> NodeListing:
    """Every node of the cluster. ``page_size`` 0 asks for the whole list at once.

    The request for the next page is sent before the current page is decoded, so that the
    server produces page N+1 while kubeinv decodes page N: at most two raw pages are held.

    A 410 Gone in the middle of the list means the continue token expired (etcd compacted past
    the list's snapshot): the list starts over, at most ``max_restarts`` times, like client-go's
    pager does, but paged again rather than as one unbounded list.
    """

    def fetch(token: str | None) -> asyncio.Task[Response]:
        query: Query = [("limit", page_size)] if page_size > 0 else []
        if token:
            query = [*query, ("continue", token)]
        return asyncio.ensure_future(client.get(NODES_PATH, query=query))

    restarts = 0
    while True:
        listing = NodeListing(restarts=restarts)
        pending: asyncio.Task[Response] | None = fetch(None)
        token: str | None = None
        try:
            while pending is not None:
                response = await pending
                pending = None
                token = peek_continue(response.body)
                if token:
                    pending = fetch(token)
                    await asyncio.sleep(0)  # let the next request reach the socket
                page = decoded(response, decode_node_page)
                del response
                listing.pages += 1
                listing.nodes.extend(page.nodes)
                listing.problems.extend(page.problems)
                if page.continue_token != token:  # trust the full decode over the peek
                    raise MalformedResponseError(
                        f"GET {client.url(NODES_PATH)}: list metadata "
                        "could not be read consistently"
                    )
            return listing
        except GoneError:
            if listing.pages == 0 or restarts >= max_restarts:  # 410 on page 1 is no expiry
                raise
            restarts += 1
            logger.info(
                "node list of %s: continue token expired after %d pages, restarting (%d/%d)",
                client.server_url,
                listing.pages,
                restarts,
                max_restarts,
            )
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending
