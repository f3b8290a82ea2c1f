"""Safe retries: idempotency keys, and the fingerprint that tells a retry (the same request
again) from a different request sent with the same key."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from personas.domain.errors import InvalidInput

IDEMPOTENCY_KEY_MAX: Final = 255
IDEMPOTENCY_KEY_PATTERN: Final = rf"[A-Za-z0-9_.:~+/=-]{{1,{IDEMPOTENCY_KEY_MAX}}}"
"""Letters, digits and `_ . : ~ + / = -`: a UUID, a ULID, base64 or a readable name."""
IDEMPOTENCY_RETENTION: Final = timedelta(hours=24)
"""How long a key is remembered after the write it made."""
_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


class KeyReused(InvalidInput):
    """A key already used for a different request: REST 422, GraphQL BAD_USER_INPUT."""


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A validated key, with the name its API gives it (for errors)."""

    value: str
    field: str


@dataclass(frozen=True, slots=True)
class Once:
    """A write to make at most once: its key, and the fingerprint of what it asks for."""

    key: IdempotencyKey
    fingerprint: str


def idempotency_key(raw: str | None, field: str) -> IdempotencyKey | None:
    """The key a caller sent, if any."""
    if raw is None:
        return None
    if not _KEY.fullmatch(raw):
        raise InvalidInput(
            field,
            f"must be 1 to {IDEMPOTENCY_KEY_MAX} letters, digits or _ . : ~ + / = - (e.g. a UUID)",
        )
    return IdempotencyKey(raw, field)


def request_fingerprint(operation: str, request: Mapping[str, object]) -> str:
    """A hash of the operation and its validated input as canonical JSON (sorted keys, no
    spaces): the same for the same request through either API."""
    canonical = json.dumps(
        [operation, request], sort_keys=True, separators=(",", ":"), allow_nan=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def once(key: IdempotencyKey | None, operation: str, request: Mapping[str, object]) -> Once | None:
    """The write `operation` of `request` made at most once under `key` (None: no key,
    an ordinary write)."""
    if key is None:
        return None
    return Once(key, request_fingerprint(operation, request))


def same_request(once: Once, fingerprint: str) -> None:
    """A key comes back: with the request it first came with, or refused."""
    if fingerprint != once.fingerprint:
        raise KeyReused(
            once.key.field,
            "this key was already used for a different request; a retry must repeat the "
            "request exactly, and a new request needs a new key",
        )
