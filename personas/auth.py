"""API keys: how they look, how they are checked, and who a request acts for."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from personas.availability import RETRY_AFTER_SECONDS
from personas.domain import ANONYMOUS, NOBODY, ApiKey, Principal, Unauthenticated, Unavailable
from personas.middleware import refuse
from personas.store import PersonaStore

log = logging.getLogger("personas.auth")

KEY_PREFIX = "pk"
CACHE_SECONDS = 5.0
GRAPHIQL_ASSETS = "/graphiql/"
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/v1/openapi.json"})


@dataclass(frozen=True, slots=True)
class NewKey:
    id: str
    secret: str

    @property
    def token(self) -> str:
        """What the client sends as `Authorization: Bearer <token>`; shown only once."""
        return f"{KEY_PREFIX}_{self.id}_{self.secret}"

    @property
    def secret_hash(self) -> str:
        return hash_secret(self.secret)


def generate_key() -> NewKey:
    """A key id and a 256-bit random secret."""
    return NewKey(id=secrets.token_hex(8), secret=secrets.token_urlsafe(32))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_token(token: str) -> tuple[str, str] | None:
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or not key_id or not secret:
        return None
    return key_id, secret


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Authenticator:
    """Turns an Authorization header into a principal.

    Only answers that cannot be made wrong by a key being created are cached, for
    `CACHE_SECONDS`: a key found active, and "some key exists". So the first key ends
    anonymous access at once, and a key works as soon as it is created, while a busy
    client costs no extra round trip per request. A revoked key stops working within
    `CACHE_SECONDS`.

    An Authorization header checked against its key is remembered, with the principal it
    stands for, until that key's entry is due to be read again: the same header in that
    time is not parsed or hashed again. (The headers remembered are the secrets the process
    has just been sent; at most `MAX_CACHED` are kept.)
    """

    MAX_CACHED = 10_000

    def __init__(self, store: PersonaStore, anonymous_allowed: bool) -> None:
        self.store = store
        self.anonymous_allowed = anonymous_allowed
        self._keys: dict[str, tuple[float, tuple[ApiKey, str]]] = {}
        self._checked: dict[str, tuple[float, Principal]] = {}
        self._keys_exist_at = float("-inf")

    async def principal(self, authorization: str | None) -> Principal:
        if authorization is None:
            if await self._anonymous():
                return ANONYMOUS
            raise Unauthenticated("send an API key as 'Authorization: Bearer <key>'")
        remembered = self.remembered(authorization)
        if remembered is not None:
            return remembered
        scheme, _, token = authorization.partition(" ")
        parsed = parse_token(token.strip()) if scheme.lower() == "bearer" else None
        if parsed is None:
            raise Unauthenticated("the Authorization header must be 'Bearer <API key>'")
        key_id, secret = parsed
        found = await self._key(key_id)
        if found is None or not hmac.compare_digest(found[1], hash_secret(secret)):
            raise Unauthenticated("unknown or revoked API key")
        principal = found[0].principal
        if len(self._checked) >= self.MAX_CACHED:
            self._checked.clear()
        # as fresh as the key's own entry, so that a revocation is seen as soon as there
        self._checked[authorization] = (self._keys[key_id][0], principal)
        return principal

    def remembered(self, authorization: str) -> Principal | None:
        """The principal of a header checked against its key's current entry, if it was."""
        checked = self._checked.get(authorization)
        if checked is not None and time.monotonic() - checked[0] <= CACHE_SECONDS:
            return checked[1]
        return None

    async def _anonymous(self) -> bool:
        """Anonymous access: only where allowed, and only while no key exists."""
        if not self.anonymous_allowed:
            return False
        if time.monotonic() - self._keys_exist_at <= CACHE_SECONDS:
            return False
        if await self.store.keys.any():
            self._keys_exist_at = time.monotonic()
            return False
        return True

    async def _key(self, key_id: str) -> tuple[ApiKey, str] | None:
        cached = self._keys.get(key_id)
        if cached is not None and time.monotonic() - cached[0] <= CACHE_SECONDS:
            return cached[1]
        found = await self.store.keys.find(key_id)
        if found is None:
            self._keys.pop(key_id, None)
            return None
        if len(self._keys) > self.MAX_CACHED:
            self._keys.clear()
        self._keys[key_id] = (time.monotonic(), found)
        return found


class Authentication:
    """Resolves the caller before any route runs; refuses unknown callers with 401.

    The application's lifespan puts its `Authenticator` in `app.state.authenticator`.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS or _graphiql_page(scope):
            await self.app(scope, receive, send)
            return
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
        authenticator: Authenticator = scope["app"].state.authenticator
        remembered = None if authorization is None else authenticator.remembered(authorization)
        try:  # a header just checked needs no await
            principal = remembered or await authenticator.principal(authorization)
        except Unavailable as error:
            await refuse(
                scope,
                send,
                503,
                error.code,
                "Service unavailable",
                error.message,
                [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())],
            )
            return
        except Unauthenticated as error:
            await refuse(
                scope,
                send,
                401,
                error.code,
                "Unauthenticated",
                error.message,
                [(b"www-authenticate", b'Bearer realm="personas"')],
            )
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def principal_of(scope: Scope) -> Principal:
    """Whom a request acts for, as `Authentication` resolved it (nobody, on a path it
    leaves alone)."""
    principal: Principal = scope.get("state", {}).get("principal", NOBODY)
    return principal


def _graphiql_page(scope: Scope) -> bool:
    """The GraphiQL page itself is static, and so are its assets; the queries it sends carry
    the key."""
    if scope["method"] in ("GET", "HEAD") and scope["path"].startswith(GRAPHIQL_ASSETS):
        return True
    if scope["path"] != "/graphql" or scope["method"] != "GET" or scope["query_string"]:
        return False
    return any(name == b"accept" and b"text/html" in value for name, value in scope["headers"])
