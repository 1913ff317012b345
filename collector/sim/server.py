"""HTTP handling of one simulated kube-apiserver: routing, authentication, negotiation, faults."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import msgspec
from aiohttp import web

from collector.sim import nodes
from collector.sim.cluster import (
    ContinueError,
    RequestRecord,
    SimCluster,
    encode_continue,
    parse_label_selector,
    selector_matches,
)

Json = dict[str, Any]
_encode = msgspec.json.Encoder().encode

JSON = "application/json"
TABLE_GROUP = "meta.k8s.io"
DISCOVERY_GROUP = "apidiscovery.k8s.io"

EXPIRED_CONTINUE_MESSAGE = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this response "
    "to retrieve the remainder of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted between the time the "
    "first chunk was returned and now may show up in the list."
)


@cache
def _status_fixture(name: str) -> bytes:
    return resources.files("collector.sim").joinpath("data", "status", name).read_bytes()


def status_body(
    code: int, reason: str, message: str, details: Json | None = None, metadata: Json | None = None
) -> bytes:
    doc: Json = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": metadata or {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        doc["details"] = details
    doc["code"] = code
    return _encode(doc) + b"\n"


_REASONS = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    406: (
        "NotAcceptable",
        "the server was unable to respond with a content type that the client supports",
    ),
    409: ("Conflict", "the server reported a conflict"),
    429: ("TooManyRequests", "Too many requests, please try again later."),
    500: ("InternalError", "Internal error occurred: simulated fault"),
    502: ("InternalError", 'an error on the server ("") has prevented the request from succeeding'),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: (
        "Timeout",
        "the server was unable to return a response in the time allotted, but may still be "
        "processing the request",
    ),
}


def _media_types(accept: str) -> list[tuple[str, dict[str, str]]]:
    """Accept header -> [(type/subtype, params)] in the order given (kube-apiserver ignores q)."""
    result = []
    for clause in accept.split(","):
        parts = [p.strip() for p in clause.split(";")]
        if not parts[0]:
            continue
        params = {}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            params[k.strip().lower()] = v.strip().strip('"')
        result.append((parts[0].lower(), params))
    return result or [("*/*", {})]


def _is_json(media: str) -> bool:
    return media in (JSON, "application/*", "*/*")


# What GET / lists, as kube-apiserver does (the paths kubeinv and kubectl use).
_ROOT_PATHS = ("/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version")


class ApiServer:
    """The request handler of one cluster (an aiohttp low-level server handler)."""

    def __init__(self, cluster: SimCluster) -> None:
        self.cluster = cluster
        self._hung: set[asyncio.Future[None]] = set()

    def release_hung(self) -> None:
        for fut in self._hung:
            if not fut.done():
                fut.cancel()

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        cluster = self.cluster
        path = _unprefixed(request.path, cluster.path_prefix)
        user = self._authenticate(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        as_user = request.headers.get("Impersonate-User")
        cluster.request_log.append(
            RequestRecord(
                request.method,
                path or request.path,
                request.query_string,
                headers,
                user,
                as_user,
                tuple(request.headers.getall("Impersonate-Group", ())),
            )
        )
        faults = cluster.faults
        if faults.latency:
            await asyncio.sleep(faults.latency)
        if faults.hang:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._hung.add(fut)
            try:
                await fut
            finally:
                self._hung.discard(fut)
        if user is None:
            return _respond(401, _status_fixture("401-unauthorized.json"))
        if path is None:  # outside the path prefix
            return _status(404)
        denied = self._authorize(request, user, path)
        if denied is not None:
            return denied
        user = as_user or user
        rule = faults.match(request.method, path)
        if rule is not None:
            return self._fault_response(rule.status, rule.retry_after, user, path)
        if request.method not in ("GET", "HEAD"):
            return _status(
                405,
                message="the server does not allow this method on the requested resource "
                f"({request.method} {path})",
            )
        response = self._route(request, path, user)
        mode = faults.malformed_mode(path)
        if mode is not None and isinstance(response, web.Response) and response.body:
            body = bytes(response.body)  # type: ignore[arg-type]
            broken = (
                body[: max(1, len(body) // 2)]
                if mode == "truncated"
                else b'{"kind":"NodeList",\x00garbage<html>'
            )
            response = web.Response(
                body=broken, status=response.status, headers=dict(response.headers)
            )
            response.headers.pop("Content-Length", None)
        return response

    # --- auth ----------------------------------------------------------------------------------

    def _authenticate(self, request: web.BaseRequest) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            return self.cluster.tokens.get(auth[7:].strip())
        transport = request.transport
        cert = transport.get_extra_info("peercert") if transport is not None else None
        if cert:
            for rdn in cert.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        return str(value)
        return None

    def _authorize(self, request: web.BaseRequest, user: str, path: str) -> web.Response | None:
        """kube-apiserver's impersonation filter and RBAC for impersonated identities: the
        authenticated user must be allowed to impersonate, and the impersonated user and groups
        need a grant for the resource (discovery and /version are open to everyone)."""
        as_user = request.headers.get("Impersonate-User")
        groups = request.headers.getall("Impersonate-Group", [])
        if as_user is None:
            if groups or request.headers.get("Impersonate-Uid"):
                return _status(
                    500, message="requested impersonation of groups or uid without a user"
                )
            return None  # the simulator's own users may read everything
        cluster = self.cluster
        if cluster.impersonators is not None and user not in cluster.impersonators:
            message = (
                f'users "{as_user}" is forbidden: User "{user}" cannot impersonate resource '
                '"users" in API group "" at the cluster scope'
            )
            return _respond(403, status_body(403, "Forbidden", message, {"kind": "users"}))
        resource = resource_of(path)
        if resource is None:
            return None
        allowed: set[str] = set()
        for subject in (as_user, *groups):
            allowed |= cluster.grants.get(subject, frozenset())
        if "*" in allowed or resource[1] in allowed:
            return None
        return _respond(403, forbidden_body(as_user, path))

    def _fault_response(
        self, status: int, retry_after: int | None, user: str, path: str
    ) -> web.Response:
        if status == 401:
            return _respond(401, _status_fixture("401-unauthorized.json"))
        if status == 403:
            return _respond(403, forbidden_body(user, path))
        if status == 503 and self._aggregated_group_path(path):
            return _unavailable()
        reason, message = _REASONS.get(status, ("", f"simulated status {status}"))
        details: Json | None = None
        headers: dict[str, str] = {}
        if status == 429:
            seconds = retry_after if retry_after is not None else 1
            details = {"retryAfterSeconds": seconds}
            headers["Retry-After"] = str(seconds)
        elif retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        if status == 500:
            details = {"causes": [{"message": "simulated fault"}]}
        return _respond(status, status_body(status, reason, message, details), headers=headers)

    def _aggregated_group_path(self, path: str) -> str | None:
        parts = path.strip("/").split("/")
        if len(parts) >= 3 and parts[0] == "apis" and self.cluster.is_aggregated_group(parts[1]):
            return parts[1]
        return None

    # --- routing -------------------------------------------------------------------------------

    def _route(self, request: web.BaseRequest, path: str, user: str) -> web.Response:
        parts = [p for p in path.split("/") if p]
        if not parts:
            return _respond(200, _encode({"paths": list(_ROOT_PATHS)}))
        head, rest = parts[0], parts[1:]
        if head == "version" and not rest:
            return _respond(200, _encode(self.cluster.version_info))
        if head in ("healthz", "livez", "readyz"):
            return web.Response(body=b"ok", content_type="text/plain")
        if head == "api":
            return self._route_core(request, rest, user)
        if head == "apis":
            return self._route_groups(request, rest)
        return _status(404)

    def _route_core(self, request: web.BaseRequest, parts: list[str], user: str) -> web.Response:
        """/api/..."""
        if not parts:
            return self._discovery_root(request, core=True)
        if parts[0] != "v1":
            return _status(404)
        if len(parts) == 1:
            return self._resource_list("v1")
        return self._core(request, parts[1:], user)

    def _route_groups(self, request: web.BaseRequest, parts: list[str]) -> web.Response:
        """/apis/..."""
        cluster = self.cluster
        disc = cluster.discovery()
        if not parts:
            return self._discovery_root(request, core=False)
        group = parts[0]
        if group not in disc.groups:
            return _status(404)
        if len(parts) == 1:
            return _respond(200, disc.groups[group])
        version = parts[1]
        if (group, version) not in disc.served:
            return _status(404)
        if group in cluster.faults.unavailable_groups:
            return _unavailable()
        if len(parts) == 2:
            return self._resource_list(f"{group}/{version}")
        return self._generic(request, group, version, parts[2:])

    def _resource_list(self, group_version: str) -> web.Response:
        return _respond(200, self.cluster.discovery().resource_lists[group_version])

    def _discovery_root(self, request: web.BaseRequest, *, core: bool) -> web.Response:
        """Legacy or aggregated discovery, chosen like kube-apiserver from the Accept header."""
        cluster = self.cluster
        disc = cluster.discovery()
        served = aggregated_versions_served(cluster.minor)
        for media, params in _media_types(request.headers.get("Accept", "")):
            if not _is_json(media):
                continue
            if "as" not in params and "g" not in params and "v" not in params:
                legacy = disc.api_versions if core else disc.api_group_list
                return _respond(200, legacy)
            if (
                params.get("as") == "APIGroupDiscoveryList"
                and params.get("g") == DISCOVERY_GROUP
                and params.get("v") in served
            ):
                api_version = f"{DISCOVERY_GROUP}/{params['v']}"
                docs = disc.aggregated_api if core else disc.aggregated_apis
                content_type = (
                    f"application/json;g={DISCOVERY_GROUP};v={params['v']};as=APIGroupDiscoveryList"
                )
                return _respond(200, docs[api_version], content_type=content_type)
        return _not_acceptable()

    def _core(self, request: web.BaseRequest, rest: list[str], user: str) -> web.Response:
        cluster = self.cluster
        resource = rest[0]
        if resource == "nodes":
            if len(rest) == 1:
                return self._list_nodes(request)
            if len(rest) == 2:
                name = rest[1]
                try:
                    node = cluster.node(name)
                except KeyError:
                    return _status(
                        404,
                        "NotFound",
                        f'nodes "{name}" not found',
                        {"name": name, "kind": "nodes"},
                    )
                body = b'{"kind":"Node","apiVersion":"v1",' + node.body[1:]
                return _respond(200, body.replace(nodes.HEARTBEAT_PLACEHOLDER, cluster.heartbeat()))
        if resource == "namespaces":
            if len(rest) == 1:
                items = [namespace_object(ns, cluster) for ns in _NAMESPACES]
                return self._list(request, "NamespaceList", items)
            name = rest[1]
            if len(rest) == 2:
                if name not in _NAMESPACES:
                    return _status(
                        404,
                        "NotFound",
                        f'namespaces "{name}" not found',
                        {"name": name, "kind": "namespaces"},
                    )
                obj = {"kind": "Namespace", "apiVersion": "v1", **namespace_object(name, cluster)}
                return _respond(200, _encode(obj))
            if len(rest) >= 3 and rest[2] == "services":
                items = cluster.services() if name == "kube-system" else []
                if len(rest) == 3:
                    return self._list(request, "ServiceList", items)
                found = [s for s in items if s["metadata"]["name"] == rest[3]]
                if len(rest) == 4 and found:
                    return _respond(
                        200, _encode({"kind": "Service", "apiVersion": "v1", **found[0]})
                    )
                return _status(
                    404,
                    "NotFound",
                    f'services "{rest[3]}" not found',
                    {"name": rest[3], "kind": "services"},
                )
            return self._generic(request, "", "v1", rest[2:], namespace=name)
        if resource == "services" and len(rest) == 1:
            return self._list(request, "ServiceList", cluster.services())
        return self._generic(request, "", "v1", rest)

    def _generic(
        self,
        request: web.BaseRequest,
        group: str,
        version: str,
        rest: list[str],
        namespace: str | None = None,
    ) -> web.Response:
        """Any other served resource: an empty list (the simulator stores nothing else)."""
        if rest and rest[0] == "namespaces" and len(rest) >= 3 and namespace is None:
            return self._generic(request, group, version, rest[2:], namespace=rest[1])
        entry = self.cluster.discovery().resources_by_path.get((group, version, rest[0]))
        if entry is None or len(rest) != 1 or "list" not in entry.get("verbs", []):
            return _status(404)
        kind = entry["responseKind"]["kind"] + "List"
        api_version = f"{group}/{version}" if group else version
        return self._list(request, kind, [], api_version=api_version)

    def _list(
        self, request: web.BaseRequest, kind: str, items: list[Json], api_version: str = "v1"
    ) -> web.Response:
        selector = request.query.get("labelSelector")
        if selector:
            reqs = parse_label_selector(selector)
            items = [i for i in items if selector_matches(reqs, i["metadata"].get("labels", {}))]
        rv = str(self.cluster.resource_version)
        if _wants_table(request):
            return self._table(
                request,
                columns=_default_columns(),
                rows=[(self._default_cells(i), i) for i in items],
                rv=rv,
                token=None,
                remaining=None,
            )
        doc = {
            "kind": kind,
            "apiVersion": api_version,
            "metadata": {"resourceVersion": rv},
            "items": items,
        }
        return _respond(200, _encode(doc))

    def _default_cells(self, obj: Json) -> list[str]:
        created = obj["metadata"].get("creationTimestamp", "")
        return [obj["metadata"]["name"], _age(created)]

    def _list_nodes(self, request: web.BaseRequest) -> web.Response:
        cluster = self.cluster
        query = request.query
        try:
            limit = int(query.get("limit", "0") or 0)
        except ValueError:
            return _status(400, "BadRequest", f"invalid limit: {query.get('limit')!r}")
        selector = query.get("labelSelector")
        field_selector = query.get("fieldSelector", "")
        filtered = bool(selector or field_selector)
        try:
            snap, begin, end, token = cluster.page(
                limit=0 if filtered else limit, continue_token=query.get("continue")
            )
        except ContinueError as exc:
            if exc.reason == "expired":
                inconsistent = encode_continue(-1, exc.start)
                return _respond(
                    410,
                    status_body(
                        410,
                        "Expired",
                        EXPIRED_CONTINUE_MESSAGE,
                        metadata={"continue": inconsistent},
                    ),
                )
            return _status(400, "BadRequest", str(exc))
        bodies = snap.bodies[begin:end]
        remaining: int | None = len(snap.names) - end if token else None
        if filtered:
            # Selectors are applied while paging, as the storage layer does: a page holds up to
            # `limit` matches and the token continues after the last object examined.
            reqs = parse_label_selector(selector or "")
            wanted_name = _field_name(field_selector)
            bodies, index = [], begin
            while index < len(snap.names) and not (0 < limit <= len(bodies)):
                name, body = snap.names[index], snap.bodies[index]
                index += 1
                if wanted_name is not None and name != wanted_name:
                    continue
                labels = msgspec.json.decode(body)["metadata"].get("labels", {}) if reqs else {}
                if selector_matches(reqs, labels):
                    bodies.append(body)
            more = index < len(snap.names)
            token = (
                encode_continue(snap.resource_version, snap.names[index - 1] + "\x00")
                if more
                else None
            )
            remaining = None
        rv = str(snap.resource_version)
        if _wants_table(request):
            rows = []
            for body in bodies:
                obj = msgspec.json.decode(body)
                cells = nodes.table_cells(obj)
                cells[3] = _age(obj["metadata"]["creationTimestamp"])
                rows.append((cells, obj))
            return self._table(
                request,
                columns=nodes.NODE_COLUMNS,
                rows=rows,
                rv=rv,
                token=token,
                remaining=remaining,
            )
        meta = b'{"resourceVersion":"' + rv.encode() + b'"'
        if token:
            meta += b',"continue":"' + token.encode() + b'"'
        if remaining is not None:
            meta += b',"remainingItemCount":' + str(remaining).encode()
        meta += b"}"
        body = b"".join(
            (
                b'{"kind":"NodeList","apiVersion":"v1","metadata":',
                meta,
                b',"items":[',
                b",".join(bodies),
                b"]}",
            )
        )
        return _respond(200, body.replace(nodes.HEARTBEAT_PLACEHOLDER, cluster.heartbeat()))

    def _table(
        self,
        request: web.BaseRequest,
        *,
        columns: list[Json],
        rows: list[tuple[list[str], Json]],
        rv: str,
        token: str | None,
        remaining: int | None,
    ) -> web.Response:
        include = request.query.get("includeObject", "Metadata")
        meta: Json = {"resourceVersion": rv}
        if token:
            meta["continue"] = token
        if remaining is not None:
            meta["remainingItemCount"] = remaining
        out_rows = []
        hb = self.cluster.heartbeat().decode()
        for cells, obj in rows:
            row: Json = {"cells": cells}
            if include == "Object":
                body = _encode(obj).replace(nodes.HEARTBEAT_PLACEHOLDER, hb.encode())
                row["object"] = {"kind": "Node", "apiVersion": "v1", **msgspec.json.decode(body)}
            elif include != "None":
                row["object"] = {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj["metadata"],
                }
            out_rows.append(row)
        version = "v1"
        for _media, params in _media_types(request.headers.get("Accept", "")):
            if params.get("as") == "Table":
                version = params.get("v", "v1")
                break
        doc = {
            "kind": "Table",
            "apiVersion": f"{TABLE_GROUP}/{version}",
            "metadata": meta,
            "columnDefinitions": columns,
            "rows": out_rows,
        }
        return _respond(200, _encode(doc))


_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")


def namespace_object(name: str, cluster: SimCluster) -> Json:
    uid = cluster.uid if name == "kube-system" else str(uuid.uuid5(uuid.UUID(cluster.uid), name))
    return {
        "metadata": {
            "name": name,
            "uid": uid,
            "resourceVersion": "4" if name == "kube-system" else "2",
            "creationTimestamp": cluster.created,
            "labels": {"kubernetes.io/metadata.name": name},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def _unprefixed(path: str, prefix: str) -> str | None:
    """The API path under the cluster's path prefix, or None when outside it."""
    if not prefix:
        return path
    if path == prefix or path.startswith(prefix + "/"):
        return path[len(prefix) :] or "/"
    return None


def resource_of(path: str) -> tuple[str, str] | None:
    """(API group, resource) a request path reads, or None for discovery and non-API paths."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"] and len(parts) >= 3:
        return "", parts[2] if parts[2] != "namespaces" or len(parts) < 5 else parts[4]
    if parts[:1] == ["apis"] and len(parts) >= 4:
        return parts[1], parts[3] if parts[3] != "namespaces" or len(parts) < 6 else parts[5]
    return None


def forbidden_body(user: str, path: str) -> bytes:
    group, resource = resource_of(path) or ("", "")
    if resource:
        message = (
            f'{resource} is forbidden: User "{user}" cannot list resource "{resource}" '
            f'in API group "{group}" at the cluster scope'
        )
        return status_body(403, "Forbidden", message, {"kind": resource})
    return status_body(403, "Forbidden", f'forbidden: User "{user}" cannot get path "{path}"', {})


def _field_name(field_selector: str) -> str | None:
    for part in field_selector.split(","):
        key, _, value = part.partition("=")
        if key.strip() == "metadata.name":
            return value.lstrip("=").strip()
    return None


def _wants_table(request: web.BaseRequest) -> bool:
    for media, params in _media_types(request.headers.get("Accept", "")):
        if (
            params.get("as") == "Table"
            and params.get("g") == TABLE_GROUP
            and params.get("v") in ("v1", "v1beta1")
        ):
            return True
        if _is_json(media) and "as" not in params:
            return False
    return False


def _default_columns() -> list[Json]:
    return [nodes.NODE_COLUMNS[0], nodes.NODE_COLUMNS[3]]


def _age(created: str) -> str:
    try:
        t = dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return "<unknown>"
    return nodes.human_duration(time.time() - t.timestamp())


def _respond(
    status: int,
    body: bytes,
    *,
    content_type: str = JSON,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    hdrs = {
        "Content-Type": content_type,
        "Cache-Control": "no-cache, private",
        "Audit-Id": str(uuid.uuid4()),
    }
    if headers:
        hdrs.update(headers)
    return web.Response(body=body, status=status, headers=hdrs)


def _status(
    code: int, reason: str | None = None, message: str | None = None, details: Json | None = None
) -> web.Response:
    default_reason, default_message = _REASONS.get(code, ("", ""))
    return _respond(
        code,
        status_body(
            code,
            reason or default_reason,
            message or default_message,
            details if details is not None else {},
        ),
    )


def _not_acceptable() -> web.Response:
    message = (
        "only the following media types are accepted: application/json, application/yaml, "
        "application/vnd.kubernetes.protobuf"
    )
    return _respond(406, status_body(406, "NotAcceptable", message))


def _unavailable() -> web.Response:
    """What kube-aggregator answers when an APIService's backend is down: plain text."""
    return web.Response(
        body=b"service unavailable\n",
        status=503,
        headers={"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"},
    )


def aggregated_versions_served(minor: int) -> list[str]:
    served = []
    if minor >= 30:
        served.append("v2")
    if 27 <= minor <= 32:
        served.append("v2beta1")
    return served
