"""Outgoing webhook requests that reach only the addresses a webhook may: every host name is
resolved, every address checked, and the connection made to the checked address (so that a
name resolving elsewhere on the next lookup cannot redirect it). No proxy, no redirects."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any, Final

import httpcore
import httpx

from personas.domain import InvalidInput
from personas.domain.webhooks import IPAddress, address_refusal, webhook_url

RESOLVE_SECONDS: Final = 5.0


class RefusedAddress(httpx.TransportError):
    """A delivery would have reached an address webhooks may not."""


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses of `host` (itself, when it is one)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise OSError(f"no answer within {RESOLVE_SECONDS:g} s") from None
    return list(dict.fromkeys(ipaddress.ip_address(item[4][0]) for item in found))


async def checked_addresses(host: str, port: int, allow_loopback: bool) -> list[IPAddress]:
    """The addresses of `host`, when every one of them may be reached; else RefusedAddress."""
    try:
        addresses = await resolve(host, port)
    except OSError as error:
        raise RefusedAddress(f"{host} does not resolve ({error})") from None
    if not addresses:
        raise RefusedAddress(f"{host} does not resolve")
    for address in addresses:
        refusal = address_refusal(address, allow_loopback)
        if refusal is not None:
            raise RefusedAddress(f"{host} resolves to {refusal}")
    return addresses


async def check_url(raw: object, allow_loopback: bool, field: str = "url") -> str:
    """A webhook URL that is well formed and whose host resolves only to addresses
    deliveries may reach; else InvalidInput naming `field`."""
    url = webhook_url(raw, allow_loopback, field)
    try:
        await checked_addresses(url.host, url.port, allow_loopback)
    except RefusedAddress as error:
        raise InvalidInput(field, f"deliveries cannot go there: {error}") from None
    return url.url


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses that pass the check, by address."""

    def __init__(self, allow_loopback: bool) -> None:
        self.allow_loopback = allow_loopback
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await checked_addresses(host, port, self.allow_loopback)
        return await self._inner.connect_tcp(
            str(addresses[0]),
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise RefusedAddress("webhooks do not reach Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool that uses `CheckedBackend`."""

    def __init__(self, allow_loopback: bool) -> None:
        super().__init__(trust_env=False, retries=0)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=CheckedBackend(allow_loopback),
        )


def client(allow_loopback: bool, timeout: float) -> httpx.AsyncClient:
    """The webhook client: checked addresses, no redirects, no proxy from the environment,
    `timeout` seconds for each phase of a request."""
    return httpx.AsyncClient(
        transport=CheckedTransport(allow_loopback),
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(timeout),
        headers={"user-agent": "personas-webhooks/1"},
    )
