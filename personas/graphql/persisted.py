"""Persisted queries (Apollo's automatic persisted query protocol, and registered documents)
and revalidation of GraphQL answers sent by GET."""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.responses import Response

PROTOCOL_VERSION = 1
STORED_DOCUMENT_MAX = 100_000
"""Longest document the automatic store keeps, in characters; a longer one still runs."""

_HASH = re.compile(r"[0-9a-f]{64}")


class PersistedQueryError(Exception):
    """A persisted-query request that cannot run, answered as a GraphQL error."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def document_hash(document: str) -> str:
    """What a client sends as `extensions.persistedQuery.sha256Hash`."""
    return hashlib.sha256(document.encode()).hexdigest()


class DocumentCache:
    """Documents by hash, the least recently used dropped first beyond `max_entries`."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._documents: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._documents)

    def get(self, sha256: str) -> str | None:
        document = self._documents.get(sha256)
        if document is not None:
            self._documents.move_to_end(sha256)
        return document

    def put(self, sha256: str, document: str) -> None:
        self._documents[sha256] = document
        self._documents.move_to_end(sha256)
        while len(self._documents) > self.max_entries:
            self._documents.popitem(last=False)


def load_registered(path: Path) -> dict[str, str]:
    """A JSON object `{sha256: document}`, as GraphQL Code Generator's client preset writes
    with `persistedDocuments` (its keys read `sha256:<hash>`); every hash must be that of its
    document."""
    try:
        loaded = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        raise ValueError(f"cannot read the persisted queries in {path}: {error}") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a JSON object of sha256 hash to document")
    registered = {}
    for key, document in loaded.items():
        sha256 = key.lower().removeprefix("sha256:")
        if not isinstance(document, str) or document_hash(document) != sha256:
            raise ValueError(f"{path}: {key!r} is not the sha256 hash of its document")
        registered[sha256] = document
    return registered


class PersistedQueries:
    """Turns a request's `query` and `extensions.persistedQuery` into the document to run.

    Automatic persisted queries: a hash alone runs the document registered under it, or
    fails with PERSISTED_QUERY_NOT_FOUND, and the client sends the hash with the document to
    register it. With `only`, nothing registers that way: only the `registered` documents
    run, whether sent by hash or in full.
    """

    def __init__(
        self, cache_size: int, registered: Mapping[str, str] | None = None, only: bool = False
    ) -> None:
        self.cache = DocumentCache(cache_size)
        self.registered = dict(registered or {})
        self.only = only

    def document(self, query: str | None, extensions: Mapping[str, Any] | None) -> str | None:
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            if self.only and query is not None and document_hash(query) not in self.registered:
                raise _only()
            return query
        sha256 = _requested_hash(persisted)
        if query is None:
            found = self.registered.get(sha256)
            if found is None and not self.only:
                found = self.cache.get(sha256)
            if found is None:
                raise PersistedQueryError(
                    "PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound", status=200
                )
            return found
        if document_hash(query) != sha256:
            raise PersistedQueryError(
                "PERSISTED_QUERY_HASH_MISMATCH",
                "extensions.persistedQuery.sha256Hash is not the sha256 hash of the query",
            )
        if sha256 in self.registered:
            return query
        if self.only:
            raise _only()
        if len(query) <= STORED_DOCUMENT_MAX:
            self.cache.put(sha256, query)
        return query


def _requested_hash(persisted: object) -> str:
    if not isinstance(persisted, dict) or persisted.get("version") != PROTOCOL_VERSION:
        raise PersistedQueryError(
            "PERSISTED_QUERY_NOT_SUPPORTED",
            'extensions.persistedQuery must be {"version": 1, "sha256Hash": "<64 hex digits>"}',
        )
    sha256 = persisted.get("sha256Hash")
    if not isinstance(sha256, str) or not _HASH.fullmatch(sha256.lower()):
        raise PersistedQueryError(
            "PERSISTED_QUERY_NOT_SUPPORTED",
            "extensions.persistedQuery.sha256Hash must be 64 hexadecimal digits",
        )
    return sha256.lower()


def _only() -> PersistedQueryError:
    return PersistedQueryError(
        "PERSISTED_QUERY_ONLY", "this server runs only registered documents; this one is not"
    )


CACHE_CONTROL = "private, no-cache"


def revalidated(request_headers: Headers, response: Response) -> Response:
    """A GET answer with a strong `ETag` of its body and `Cache-Control: private, no-cache`,
    or `304 Not Modified` when the client's `If-None-Match` already names it."""
    etag = f'"{hashlib.sha256(response.body).hexdigest()[:32]}"'
    headers = {"etag": etag, "cache-control": CACHE_CONTROL, "vary": "Authorization"}
    if _matches(request_headers.getlist("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return response


def _matches(if_none_match: list[str], etag: str) -> bool:
    """RFC 9110 §13.1.2: the weak comparison, `*` matching any representation."""
    for header in if_none_match:
        for tag in header.split(","):
            tag = tag.strip()
            if tag == "*" or tag.removeprefix("W/") == etag:
                return True
    return False
