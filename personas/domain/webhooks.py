"""Webhooks: endpoints that receive signed deliveries of events, which URLs they may have,
and how failed deliveries are retried."""

from __future__ import annotations

import base64
import binascii
import enum
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

from personas.domain.cursors import _pack, _unpack
from personas.domain.errors import InvalidInput
from personas.domain.events import EventFilter
from personas.domain.personas import parse_id

WEBHOOKS_PER_TENANT: Final = 20
URL_MAX: Final = 2000
SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES: Final = 32
ATTEMPTS_KEPT: Final = 50
"""The latest attempts a delivery keeps in its record."""
ROTATION_GRACE: Final = timedelta(hours=24)
"""After a secret is rotated, deliveries are signed with the old secret too for this long."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DeliveryStatus(enum.Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    url: str
    filter: EventFilter
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None
    secret: str | None = None
    """Only in the answer that creates or rotates it."""


@dataclass(frozen=True, slots=True)
class Attempt:
    at: datetime
    status_code: int | None
    duration_ms: float
    error: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    webhook_id: str
    event_id: str
    type: str
    status: DeliveryStatus
    attempts: tuple[Attempt, ...]
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    items: list[Delivery]
    has_next: bool


@dataclass(frozen=True, slots=True)
class WebhookUrl:
    url: str
    host: str
    port: int
    address: IPAddress | None
    """The address, when the URL names one rather than a host name."""


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes it: whsec_ and base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def address_refusal(address: IPAddress, allow_loopback: bool) -> str | None:
    """Why a delivery may not go to `address` (None: it may). Only public addresses are
    reachable, and loopback ones when allowed."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        if allow_loopback:
            return None
        return f"{address}, a loopback address (allowed with PERSONAS_WEBHOOK_ALLOW_LOOPBACK)"
    if not address.is_global or address.is_multicast:
        return f"{address}, a private, link-local or reserved address"
    return None


def webhook_url(raw: object, allow_loopback: bool, field: str = "url") -> WebhookUrl:
    """A webhook URL: https (http only to loopback, when allowed), a host, no credentials
    or fragment; an address given literally must be one deliveries may reach. A host name is
    resolved and checked by the caller, and again at every delivery."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput(field, "give the endpoint's URL, e.g. https://example.com/hooks")
    url = raw.strip()
    if len(url) > URL_MAX:
        raise InvalidInput(field, f"must be at most {URL_MAX} characters")
    if not url.isprintable() or any(char.isspace() for char in url):
        raise InvalidInput(field, "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise InvalidInput(field, f"not a valid URL ({error})") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in ("https", "http") or not host:
        raise InvalidInput(
            field, "must be an https URL with a host, e.g. https://example.com/hooks"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(field, "must not carry credentials; verify the signature instead")
    if parts.fragment:
        raise InvalidInput(field, "must not have a fragment (#...)")
    address: IPAddress | None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and (refusal := address_refusal(address, allow_loopback)):
        raise InvalidInput(field, f"deliveries cannot go to {refusal}")
    loopback = host == "localhost" or (address is not None and address.is_loopback)
    if scheme == "http" and not (allow_loopback and loopback):
        raise InvalidInput(field, "must use https (http is allowed only to an allowed loopback)")
    return WebhookUrl(
        url=url, host=host, port=port or (443 if scheme == "https" else 80), address=address
    )


def retry_delay(failures: int, base: float) -> float:
    """Seconds to wait after the `failures`-th failed attempt: base, 2 x base, 4 x base..."""
    return float(base * 2 ** (failures - 1))


def next_attempt(
    first_attempt: datetime, moment: datetime, failures: int, base: float, retry_for: float
) -> datetime | None:
    """When to try again after `failures` failed attempts, the first made at
    `first_attempt`; None once retrying would go past `retry_for` seconds."""
    due = moment + timedelta(seconds=retry_delay(failures, base))
    if due > first_attempt + timedelta(seconds=retry_for):
        return None
    return due


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A webhook as the delivery worker sees it: whose, where in the log, what it wants."""

    id: str
    tenant: str
    cursor: int
    """The id of the last event it has been handed (deliveries made or skipped)."""
    filter: EventFilter


@dataclass(frozen=True, slots=True)
class Due:
    """A delivery one worker has claimed: what to send, where, signed with which secrets."""

    id: str
    webhook_id: str
    url: str
    secrets: tuple[str, ...]
    body: str
    failures: int
    first_attempt_at: datetime | None

    @property
    def message_id(self) -> str:
        """Standard Webhooks' webhook-id: the same on every attempt of this delivery."""
        return f"msg_{self.id}"


def encode_delivery_cursor(delivery: Delivery) -> str:
    return _pack(["deliveries", delivery.webhook_id, delivery.id])


def decode_delivery_cursor(raw: str, webhook_id: str, field: str = "after") -> str:
    """The id of the delivery a listing cursor points after."""
    try:
        kind, cursor_id, delivery_id = _unpack(raw)
        delivery_id = parse_id(delivery_id, field)
    except (ValueError, TypeError, binascii.Error, InvalidInput):
        raise InvalidInput(field, "not a valid cursor") from None
    if kind != "deliveries" or cursor_id != webhook_id:
        raise InvalidInput(field, "not a cursor of this webhook's deliveries")
    return str(delivery_id)


def parse_webhook_id(raw: str, field: str = "id") -> str:
    try:
        return parse_id(raw, field)
    except InvalidInput:
        raise InvalidInput(field, "not a valid webhook id (24 hexadecimal characters)") from None
