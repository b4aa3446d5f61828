#!/usr/bin/env python3
"""A small fake Kubernetes API server for clusterdns's integration tests.

Serves LIST and WATCH (ListWatch semantics, as kube-runtime's watcher uses them) for Namespaces,
Services, EndpointSlices, Pods and ServiceImports (unless `--no-mcs`) from an in-memory store with one global resourceVersion, plus
control endpoints under /__control/ that let a test change the store and misbehave on purpose.
Python 3.11 standard library only. See README.md next to this file.
"""

from __future__ import annotations

import argparse
import bisect
import copy
import datetime
import json
import re
import select
import signal
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# kind -> (resource plural, apiVersion, URL prefix of the group version, namespaced)
KINDS = {
    "Namespace": ("namespaces", "v1", "/api/v1", False),
    "Service": ("services", "v1", "/api/v1", True),
    "EndpointSlice": ("endpointslices", "discovery.k8s.io/v1", "/apis/discovery.k8s.io/v1", True),
    "Pod": ("pods", "v1", "/api/v1", True),
    # The Multi-Cluster Services CRD; `--no-mcs` leaves it out (404, as without the CRD).
    "ServiceImport": (
        "serviceimports", "multicluster.x-k8s.io/v1alpha1", "/apis/multicluster.x-k8s.io/v1alpha1", True,
    ),
}
# (URL prefix, plural) -> kind
RESOURCES = {(prefix, plural): kind for kind, (plural, _, prefix, _) in KINDS.items()}

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_object(code: int, message: str, reason: str | None = None) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or REASONS.get(code, "Unknown"),
        "code": code,
    }


class BadRequest(Exception):
    pass


# --- label selectors ---------------------------------------------------------------------------

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[-A-Za-z0-9_.]*"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^()]*)\)\s*$")
_OP_RE = re.compile(rf"^\s*({_KEY})\s*(==|!=|=)\s*({_VALUE})\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


def _split_top_level(text: str) -> list[str]:
    """Splits at commas that are not inside parentheses."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise BadRequest(f"unbalanced parentheses in selector {text!r}")
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise BadRequest(f"unbalanced parentheses in selector {text!r}")
    parts.append("".join(current))
    return parts


def parse_label_selector(text: str | None):
    """Returns a predicate over a labels dict; raises BadRequest on a malformed selector."""
    if text is None or not text.strip():
        return lambda labels: True
    requirements = []
    for part in _split_top_level(text):
        if not part.strip():
            raise BadRequest(f"empty requirement in label selector {text!r}")
        m = _SET_RE.match(part)
        if m:
            key, op, values = m.group(1), m.group(2), m.group(3)
            vals = {v.strip() for v in values.split(",")}
            if "" in vals and values.strip() != "":
                raise BadRequest(f"empty value in set requirement {part!r}")
            if op == "in":
                requirements.append(lambda l, k=key, s=vals: k in l and l[k] in s)
            else:
                requirements.append(lambda l, k=key, s=vals: k not in l or l[k] not in s)
            continue
        m = _OP_RE.match(part)
        if m:
            key, op, value = m.groups()
            if op == "!=":
                requirements.append(lambda l, k=key, v=value: l.get(k) != v)
            else:
                requirements.append(lambda l, k=key, v=value: k in l and l[k] == v)
            continue
        m = _EXISTS_RE.match(part)
        if m:
            negate, key = m.groups()
            if negate:
                requirements.append(lambda l, k=key: k not in l)
            else:
                requirements.append(lambda l, k=key: k in l)
            continue
        raise BadRequest(f"unable to parse requirement {part!r} of label selector {text!r}")
    return lambda labels: all(r(labels) for r in requirements)


def parse_field_selector(text: str | None):
    """metadata.name and metadata.namespace (=, ==, !=); other fields are ignored."""
    if text is None or not text.strip():
        return lambda obj: True
    requirements = []
    for part in text.split(","):
        m = re.match(r"^\s*([A-Za-z.]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if not m:
            raise BadRequest(f"unable to parse requirement {part!r} of field selector {text!r}")
        field, op, value = m.groups()
        if field not in ("metadata.name", "metadata.namespace"):
            continue
        attr = field.split(".", 1)[1]

        def req(obj, a=attr, o=op, v=value):
            actual = obj.get("metadata", {}).get(a, "")
            return actual != v if o == "!=" else actual == v

        requirements.append(req)
    return lambda obj: all(r(obj) for r in requirements)


# --- the store ---------------------------------------------------------------------------------


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Change:
    __slots__ = ("rv", "type", "kind", "namespace", "obj", "prev")

    def __init__(self, rv, type_, kind, namespace, obj, prev):
        self.rv = rv
        self.type = type_
        self.kind = kind
        self.namespace = namespace
        self.obj = obj  # state after the change (for DELETED: last state, new rv)
        self.prev = prev  # state before the change (None for ADDED)


class Store:
    """Objects, the full change history and the knobs the control endpoints turn.

    History is never actually discarded: "compaction" only moves the point below which a watch
    may not start, so watches already running are not disturbed by it (as the apiserver's
    watch cache behaves)."""

    def __init__(self, start_rv: int):
        self.cond = threading.Condition()
        self.rv = start_rv
        self.compacted = start_rv  # watches from an rv below this get 410
        self.objects: dict[tuple[str, str, str], dict] = {}
        # kind -> (namespace, name) -> the object's JSON, encoded once when it changes, so a LIST
        # is a join of bytes rather than a sort of every object and an encode of each (the
        # stand-in should not be what a benchmark of start-up time measures).
        self.encoded: dict[str, dict[tuple[str, str], bytes]] = {kind: {} for kind in KINDS}
        self.history: list[Change] = []
        self.history_rvs: list[int] = []
        self.generation = 0  # bumped to end every open watch
        self.fail_status: int | None = None
        self.fail_path: str | None = None  # fail only requests whose path contains this
        self.fail_watches = True  # fail watch requests too (False: lists and the rest only)
        self.held = False  # new watches wait (send nothing) until released
        self.stopping = False
        self.requests: list[str] = []
        self.watches: dict[int, str] = {}  # id -> request line of each open watch
        self._next_watch = 0
        self.cuts: dict[str, int] = {}  # kind -> watches still to cut in the middle of an event
        self.snapshots: dict[str, tuple[int, list]] = {}  # continue token id -> (rv, items)
        self.churned = 0  # updates the churn thread has applied
        self.churning = False

    # All methods below expect the caller to hold self.cond unless they take it themselves.

    def _record(self, type_, kind, namespace, obj, prev):
        change = Change(self.rv, type_, kind, namespace, obj, prev)
        self.history.append(change)
        self.history_rvs.append(self.rv)

    def apply(self, obj: dict) -> int:
        if not isinstance(obj, dict):
            raise BadRequest("an object must be a JSON object")
        kind = obj.get("kind")
        if kind not in KINDS:
            raise BadRequest(f"unsupported kind {kind!r}; supported: {', '.join(KINDS)}")
        plural, api_version, _, namespaced = KINDS[kind]
        obj = copy.deepcopy(obj)
        obj.setdefault("apiVersion", api_version)
        if obj["apiVersion"] != api_version:
            raise BadRequest(f"{kind} must have apiVersion {api_version}, not {obj['apiVersion']!r}")
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict) or not meta.get("name"):
            raise BadRequest(f"{kind} without metadata.name")
        if namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
        namespace = meta.get("namespace", "")
        key = (kind, namespace, meta["name"])
        with self.cond:
            prev = self.objects.get(key)
            self.rv += 1
            if prev is not None:
                meta["uid"] = prev["metadata"]["uid"]
                meta["creationTimestamp"] = prev["metadata"]["creationTimestamp"]
            else:
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", now_rfc3339())
            meta["resourceVersion"] = str(self.rv)
            self.objects[key] = obj
            self.encoded[kind][(namespace, meta["name"])] = json.dumps(obj).encode()
            self._record("MODIFIED" if prev is not None else "ADDED", kind, namespace, obj, prev)
            self.cond.notify_all()
            return self.rv

    def delete(self, kind: str, namespace: str, name: str) -> int | None:
        if kind not in KINDS:
            raise BadRequest(f"unsupported kind {kind!r}; supported: {', '.join(KINDS)}")
        if not KINDS[kind][3]:
            namespace = ""
        with self.cond:
            prev = self.objects.pop((kind, namespace, name), None)
            if prev is None:
                return None
            self.encoded[kind].pop((namespace, name), None)
            self.rv += 1
            last = copy.deepcopy(prev)
            last["metadata"]["resourceVersion"] = str(self.rv)
            self._record("DELETED", kind, namespace, last, prev)
            self.cond.notify_all()
            return self.rv

    def changes_after(self, rv: int) -> list[Change]:
        return self.history[bisect.bisect_right(self.history_rvs, rv):]

    def end_watches(self):
        self.generation += 1
        self.cond.notify_all()


# --- HTTP --------------------------------------------------------------------------------------

_PATH_RE = re.compile(
    r"^(?P<prefix>/api/v1|/apis/discovery\.k8s\.io/v1|/apis/multicluster\.x-k8s\.io/v1alpha1)"
    r"(?:/namespaces/(?P<ns>[^/]+)(?=/))?"
    r"/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+))?/?$"
)


def resolve(path: str, hidden: frozenset = frozenset()):
    """Path -> (kind, namespace or None, name or None), or None if unknown or hidden."""
    m = _PATH_RE.match(path)
    if not m:
        return None
    kind = RESOURCES.get((m.group("prefix"), m.group("plural")))
    if kind is None or kind in hidden:
        return None
    ns, name = m.group("ns"), m.group("name")
    if ns is not None and not KINDS[kind][3]:
        return None
    return kind, ns, name


def make_handler(store: Store, options):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def version_string(self):
            return "fake-apiserver/1"

        def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
            if options.verbose:
                sys.stderr.write("fake-apiserver: %s %s\n" % (self.address_string(), format % args))

        # -- plumbing --

        def _send_json(self, code: int, body, extra_headers=None):
            data = (json.dumps(body) + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (extra_headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _send_status(self, code: int, message: str, reason: str | None = None):
            self._send_json(code, status_object(code, message, reason))

        def _read_body(self):
            length = int(self.headers.get("Content-Length") or 0)
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                raw = self._read_chunked()
            else:
                raw = self.rfile.read(length) if length else b""
            if not raw.strip():
                return None
            try:
                return json.loads(raw)
            except json.JSONDecodeError as e:
                raise BadRequest(f"body is not JSON: {e}") from None

        def _read_chunked(self) -> bytes:
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()

        def _peer_closed(self) -> bool:
            """True if the client closed its end (no request is pipelined during a watch)."""
            try:
                readable, _, _ = select.select([self.connection], [], [], 0)
                if not readable:
                    return False
                return self.connection.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                return True

        def _dispatch(self):
            split = urlsplit(self.path)
            if split.path.startswith("/__control/"):
                try:
                    self._control(split.path[len("/__control/"):], split.query)
                except BadRequest as e:
                    self._send_status(400, str(e))
                return
            query = parse_qs(split.query, keep_blank_values=True)
            watch = (query.get("watch") or [""])[-1] in ("true", "1")
            with store.cond:
                store.requests.append(f"{self.command} {self.path}")
                fail = store.fail_status
                if (store.fail_path is not None and store.fail_path not in split.path) or (
                        watch and not store.fail_watches):
                    fail = None
            if fail is not None:
                self._send_status(fail, f"fake-apiserver is failing on purpose with {fail}")
                return
            try:
                self._api(split.path, query)
            except BadRequest as e:
                self._send_status(400, str(e))

        def do_GET(self):
            self._dispatch()

        def do_POST(self):
            self._dispatch()

        def do_PUT(self):
            self._dispatch()

        def do_PATCH(self):
            self._dispatch()

        def do_DELETE(self):
            self._dispatch()

        # -- the API --

        def _api(self, path: str, query: dict):
            if path == "/version":
                if self.command != "GET":
                    return self._send_status(405, f"{self.command} is not supported")
                return self._send_json(200, {
                    "major": "1",
                    "minor": "33",
                    "gitVersion": "v1.33.0-fake",
                    "gitCommit": "0000000000000000000000000000000000000000",
                    "gitTreeState": "clean",
                    "buildDate": "2025-01-01T00:00:00Z",
                    "goVersion": "go1.24.0",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                })
            target = resolve(path, options.hidden)
            if target is None:
                return self._send_status(404, f"the server could not find the requested resource ({path})")
            if self.command != "GET":
                return self._send_status(405, f"{self.command} is not supported by fake-apiserver")
            kind, ns, name = target

            def q(key):
                values = query.get(key)
                return values[-1] if values else None

            labels = parse_label_selector(q("labelSelector"))
            fields = parse_field_selector(q("fieldSelector"))
            labels_or_fields = bool(q("labelSelector") or q("fieldSelector"))

            def matches(obj) -> bool:
                meta = obj.get("metadata", {})
                if ns is not None and meta.get("namespace") != ns:
                    return False
                if name is not None and meta.get("name") != name:
                    return False
                return labels(meta.get("labels") or {}) and fields(obj)

            if q("watch") in ("true", "1"):
                return self._watch(kind, matches, query, q)
            if name is not None:
                with store.cond:
                    obj = store.objects.get((kind, ns or "", name))
                if obj is None:
                    plural = KINDS[kind][0]
                    return self._send_status(404, f'{plural} "{name}" not found')
                return self._send_json(200, obj)
            # Pagination as the real apiserver does it: a list with `limit` that is not served
            # from its watch cache (no resourceVersion, or not "0") comes in pages of a
            # consistent snapshot, chained by `continue` tokens; rv "0" ignores the limit.
            limit_text, token = q("limit"), q("continue")
            try:
                limit = int(limit_text) if limit_text else 0
            except ValueError:
                raise BadRequest(f"invalid limit {limit_text!r}") from None
            paged = limit > 0 and q("resourceVersion") != "0"
            with store.cond:
                if token:
                    snapshot = store.snapshots.get(token.split(":")[0])
                    if snapshot is None:
                        return self._send_status(
                            410, "the provided continue parameter is too old", "Expired")
                    rv, items = snapshot
                    offset = int(token.split(":")[1])
                else:
                    encoded = store.encoded[kind]
                    if labels_or_fields:
                        items = [encoded[(n, m)] for (k, n, m), o in sorted(store.objects.items())
                                 if k == kind and matches(o)]
                    else:
                        items = [encoded[k] for k in sorted(encoded)
                                 if (ns is None or k[0] == ns) and (name is None or k[1] == name)]
                    rv = store.rv
                    offset = 0
                metadata = {"resourceVersion": str(rv)}
                if paged and offset + limit < len(items):
                    snapshot_id = token.split(":")[0] if token else str(uuid.uuid4())
                    store.snapshots[snapshot_id] = (rv, items)
                    while len(store.snapshots) > 64:  # the oldest tokens expire
                        store.snapshots.pop(next(iter(store.snapshots)))
                    metadata["continue"] = f"{snapshot_id}:{offset + limit}"
                    metadata["remainingItemCount"] = len(items) - offset - limit
                    page = items[offset:offset + limit]
                else:
                    if token:
                        store.snapshots.pop(token.split(":")[0], None)
                    page = items[offset:offset + limit] if paged else items[offset:]
            head = json.dumps({"kind": f"{kind}List", "apiVersion": KINDS[kind][1], "metadata": metadata})
            data = b"".join([head[:-1].encode(), b', "items": [', b", ".join(page), b"]}\n"])
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _watch(self, kind, matches, query, q):
            rv_text = q("resourceVersion") or ""
            try:
                start_rv = int(rv_text) if rv_text else 0
            except ValueError:
                raise BadRequest(f"invalid resourceVersion {rv_text!r}") from None
            try:
                timeout = float(q("timeoutSeconds") or 1800)
            except ValueError:
                raise BadRequest("invalid timeoutSeconds") from None
            if options.watch_timeout is not None:
                timeout = min(timeout, options.watch_timeout)
            bookmarks = q("allowWatchBookmarks") in ("true", "1")
            deadline = time.monotonic() + timeout
            api_version = KINDS[kind][1]

            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache, private")
            self.end_headers()

            def send(event: dict):
                data = (json.dumps(event) + "\n").encode()
                with store.cond:
                    cut = event.get("type") != "BOOKMARK" and store.cuts.get(kind, 0) > 0
                    if cut:
                        store.cuts[kind] -= 1
                if cut:
                    # The connection dies in the middle of the object: a chunk that promises
                    # the whole event, half of it, then a reset (no final chunk).
                    self.wfile.write(b"%x\r\n%s" % (len(data), data[: len(data) // 2]))
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    raise ConnectionAbortedError("watch cut mid-object on purpose")
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

            with store.cond:
                generation = store.generation
                watch_id = store._next_watch
                store._next_watch += 1
                store.watches[watch_id] = f"{self.command} {self.path}"
            try:
                # A held watch says nothing until released; it starts from its rv then.
                with store.cond:
                    while store.held and generation == store.generation and not store.stopping:
                        store.cond.wait(0.5)
                        if time.monotonic() >= deadline:
                            break
                        if self._peer_closed():
                            self.close_connection = True
                            return
                    ended = generation != store.generation or store.stopping
                    expired = start_rv != 0 and start_rv < store.compacted
                    compacted = store.compacted
                    initial = []
                    if start_rv == 0:
                        # "Any" semantics: synthetic ADDED for what exists now.
                        initial = [o for (k, _, _), o in sorted(store.objects.items()) if k == kind and matches(o)]
                        cursor = store.rv
                    else:
                        cursor = start_rv
                if ended or time.monotonic() >= deadline:
                    self._end_chunks()
                    return
                if expired:
                    send({"type": "ERROR", "object": status_object(
                        410, f"too old resource version: {start_rv} ({compacted})", "Expired")})
                    self._end_chunks()
                    return
                for obj in initial:
                    send({"type": "ADDED", "object": obj})

                last_bookmark = time.monotonic()
                while True:
                    with store.cond:
                        events = []
                        for change in store.changes_after(cursor):
                            if change.kind != kind:
                                continue
                            event = self._event_for(change, matches)
                            if event is not None:
                                events.append(event)
                        cursor = store.rv
                        ended = generation != store.generation or store.stopping
                        if store.stopping:
                            self.close_connection = True
                    for event in events:
                        send(event)
                    if ended:
                        break
                    now = time.monotonic()
                    if now >= deadline:
                        break
                    if bookmarks and now - last_bookmark >= options.bookmark_interval:
                        send({"type": "BOOKMARK", "object": {
                            "kind": kind,
                            "apiVersion": api_version,
                            "metadata": {"resourceVersion": str(cursor)},
                        }})
                        last_bookmark = now
                    if self._peer_closed():
                        self.close_connection = True
                        return
                    wait = min(deadline - now, 0.5)
                    if bookmarks:
                        wait = min(wait, max(0.0, last_bookmark + options.bookmark_interval - now))
                    with store.cond:
                        if (store.rv == cursor and generation == store.generation
                                and not store.stopping):
                            store.cond.wait(max(wait, 0.01))
                self._end_chunks()
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout):
                self.close_connection = True
            finally:
                with store.cond:
                    store.watches.pop(watch_id, None)

        @staticmethod
        def _event_for(change: Change, matches):
            now_in = matches(change.obj)
            if change.type == "ADDED":
                return {"type": "ADDED", "object": change.obj} if now_in else None
            was_in = matches(change.prev)
            if change.type == "DELETED":
                return {"type": "DELETED", "object": change.obj} if was_in else None
            if was_in and now_in:
                return {"type": "MODIFIED", "object": change.obj}
            if now_in:
                return {"type": "ADDED", "object": change.obj}
            if was_in:  # no longer matches the selector: the apiserver says DELETED
                return {"type": "DELETED", "object": change.obj}
            return None

        def _end_chunks(self):
            self.wfile.write(b"0\r\n\r\n")

        # -- control --

        def _control(self, action: str, query: str):
            body = self._read_body() if self.command in ("POST", "PUT") else None
            if self.command == "GET" and action == "requests":
                with store.cond:
                    return self._send_json(200, list(store.requests))
            if self.command == "GET" and action == "state":
                with store.cond:
                    return self._send_json(200, {
                        "resourceVersion": str(store.rv),
                        "compactedResourceVersion": str(store.compacted),
                        "failing": store.fail_status,
                        "held": store.held,
                        "watches": sorted(store.watches.values()),
                        "objects": len(store.objects),
                        "churned": store.churned,
                        "churning": store.churning,
                        "cuts": dict(store.cuts),
                    })
            if self.command != "POST":
                return self._send_status(404, f"no control endpoint {self.command} /__control/{action}")
            if action == "apply":
                if body is None:
                    raise BadRequest("apply needs an object or a List")
                items = body.get("items") if isinstance(body, dict) and body.get("kind") == "List" else [body]
                if not isinstance(items, list):
                    raise BadRequest("a List needs items")
                for obj in items:  # validate all before changing anything
                    self._validate(obj)
                rv = store.rv
                for obj in items:
                    rv = store.apply(obj)
                return self._send_json(200, {"resourceVersion": str(rv)})
            if action == "delete":
                if not isinstance(body, dict) or not body.get("kind") or not body.get("name"):
                    raise BadRequest('delete needs {"kind": …, "namespace": …, "name": …}')
                rv = store.delete(body["kind"], body.get("namespace") or "default", body["name"])
                if rv is None:
                    return self._send_status(404, f"{body['kind']} {body.get('namespace', '')}/{body['name']} not found")
                return self._send_json(200, {"resourceVersion": str(rv)})
            if action == "churn":
                return self._start_churn(body)
            with store.cond:
                if action == "cut-watches":
                    kind = (body or {}).get("kind") if isinstance(body, dict) else None
                    if kind not in KINDS:
                        raise BadRequest(f"cut-watches needs a kind: one of {', '.join(KINDS)}")
                    count = body.get("count", 1)
                    if not isinstance(count, int) or count < 1:
                        raise BadRequest("cut-watches count must be a positive integer")
                    store.cuts[kind] = store.cuts.get(kind, 0) + count
                    rv = store.rv
                    return self._send_json(200, {"resourceVersion": str(rv)})
                if action == "compact":
                    store.compacted = store.rv
                elif action == "drop-watches":
                    store.end_watches()
                elif action == "hold-watches":
                    store.held = True
                    store.end_watches()
                elif action == "release-watches":
                    store.held = False
                    store.cond.notify_all()
                elif action == "fail":
                    body = body if isinstance(body, dict) else {}
                    code = body.get("status", 503)
                    if not isinstance(code, int) or not 400 <= code <= 599:
                        raise BadRequest("fail needs an HTTP error status (400..599)")
                    path, watches = body.get("path"), body.get("watches", True)
                    if path is not None and not isinstance(path, str):
                        raise BadRequest("fail path must be a string")
                    if not isinstance(watches, bool):
                        raise BadRequest("fail watches must be true or false")
                    store.fail_status = code
                    store.fail_path = path
                    store.fail_watches = watches
                    if watches and path is None:
                        store.end_watches()
                elif action == "recover":
                    store.fail_status = None
                    store.fail_path = None
                    store.fail_watches = True
                elif action == "clear-requests":
                    store.requests.clear()
                else:
                    return self._send_status(404, f"no control endpoint POST /__control/{action}")
                rv = store.rv
            return self._send_json(200, {"resourceVersion": str(rv)})

        def _start_churn(self, body):
            """Applies COUNT updates at RATE per second from a thread: EndpointSlices named
            PREFIX-0 … PREFIX-(SLICES-1) of SERVICE in NAMESPACE, cycling through addresses, so
            the store keeps its size while every update is a real change."""
            if not isinstance(body, dict):
                raise BadRequest('churn needs {"namespace", "service", "count", "rate"}')
            namespace = body.get("namespace", "default")
            service = body.get("service")
            count, rate = body.get("count"), body.get("rate")
            slices = body.get("slices", 20)
            prefix = body.get("prefix", "churn")
            if not service or not isinstance(count, int) or not isinstance(rate, (int, float)) \
                    or count < 1 or rate <= 0 or not isinstance(slices, int) or slices < 1:
                raise BadRequest("churn needs a service, a positive integer count and a positive rate")
            with store.cond:
                if store.churning:
                    raise BadRequest("a churn is already running")
                store.churning = True
                store.churned = 0

            def run():
                start = time.monotonic()
                try:
                    for n in range(count):
                        # Paced against the start, so a slow step is caught up, not lost.
                        delay = start + n / rate - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                        with store.cond:
                            if store.stopping:
                                return
                        store.apply({
                            "apiVersion": "discovery.k8s.io/v1",
                            "kind": "EndpointSlice",
                            "metadata": {"name": f"{prefix}-{n % slices}", "namespace": namespace,
                                         "labels": {"kubernetes.io/service-name": service}},
                            "addressType": "IPv4",
                            "endpoints": [{"addresses": [f"10.{200 + n % 50}.{n // 250 % 250}.{n % 250 + 1}"],
                                           "conditions": {"ready": True}}],
                            "ports": [{"name": "grpc", "port": 9090, "protocol": "TCP"}],
                        })
                        with store.cond:
                            store.churned = n + 1
                finally:
                    with store.cond:
                        store.churning = False

            threading.Thread(target=run, daemon=True).start()
            with store.cond:
                rv = store.rv
            return self._send_json(200, {"resourceVersion": str(rv)})

        @staticmethod
        def _validate(obj):
            if not isinstance(obj, dict):
                raise BadRequest("an object must be a JSON object")
            if obj.get("kind") not in KINDS:
                raise BadRequest(f"unsupported kind {obj.get('kind')!r}; supported: {', '.join(KINDS)}")
            if not isinstance(obj.get("metadata"), dict) or not obj["metadata"].get("name"):
                raise BadRequest(f"{obj['kind']} without metadata.name")

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # server_close() must not wait for open watch streams
    allow_reuse_address = True
    request_queue_size = 64


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: pick a free one)")
    parser.add_argument("--fixture", help="JSON file: one object or a List, loaded at start")
    parser.add_argument("--start-rv", type=int, default=1000, help="initial resourceVersion")
    parser.add_argument("--bookmark-interval", type=float, default=1.0, help="seconds between BOOKMARKs")
    parser.add_argument("--watch-timeout", type=float, default=None,
                        help="cap on a watch's duration in seconds (default: the client's timeoutSeconds)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument("--no-mcs", action="store_true",
                        help="do not serve ServiceImports (404, as a cluster without the MCS CRD)")
    options = parser.parse_args(argv)
    options.hidden = frozenset({"ServiceImport"}) if options.no_mcs else frozenset()

    host, _, port = options.listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    store = Store(options.start_rv)
    if options.fixture:
        with open(options.fixture) as f:
            data = json.load(f)
        items = data.get("items", []) if data.get("kind") == "List" else [data]
        for obj in items:
            store.apply(obj)

    server_class = Server
    if ":" in host:
        class Server6(Server):
            address_family = socket.AF_INET6
        server_class = Server6
    httpd = server_class((host, int(port)), make_handler(store, options))
    bound_host, bound_port = httpd.server_address[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    print(f"fake-apiserver: listening on http://{shown}:{bound_port}", flush=True)

    # Block SIGTERM/SIGINT in every thread (the mask is inherited) and wait for them here.
    signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    signal.sigwait(signals)
    with store.cond:
        store.stopping = True
        store.cond.notify_all()
    httpd.shutdown()
    httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
