"""Principals: whom a store call is made for (a tenant and its scopes), and API keys."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from personas.domain.errors import Forbidden, InvalidInput


@dataclass(frozen=True, slots=True)
class Principal:
    tenant: str
    scopes: frozenset[str]
    key_id: str | None = None


ALL_SCOPES: Final = frozenset({"read", "write", "admin"})
ANONYMOUS: Final = Principal(tenant="default", scopes=ALL_SCOPES)
NOBODY: Final = Principal(tenant="", scopes=frozenset())
TENANT_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_TENANT = re.compile(TENANT_PATTERN)


def validate_tenant(raw: str) -> str:
    if not _TENANT.fullmatch(raw):
        raise InvalidInput(
            "tenant", "1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return raw


def parse_scopes(raw: str) -> frozenset[str]:
    scopes = frozenset(item.strip() for item in raw.split(",") if item.strip())
    unknown = sorted(scopes - ALL_SCOPES)
    if not scopes or unknown:
        raise InvalidInput("scopes", f"choose from {', '.join(sorted(ALL_SCOPES))}")
    return scopes


def require(principal: Principal, scope: str) -> None:
    if scope not in principal.scopes:
        raise Forbidden(f"this API key lacks the {scope!r} scope")


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    tenant: str
    scopes: frozenset[str]
    name: str | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def principal(self) -> Principal:
        return Principal(tenant=self.tenant, scopes=self.scopes, key_id=self.id)
