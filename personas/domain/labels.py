"""Labels (releases): named pointers at one version of a persona, who may move them, and
what changed between two versions."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import jsonpatch

from personas.domain.errors import Forbidden, InvalidInput
from personas.domain.personas import Revision
from personas.domain.principals import Principal, require

LABEL_PATTERN: Final = r"[a-z0-9][a-z0-9._-]{0,63}"
LATEST: Final = "latest"
"""Always the current version; cannot be set."""
LABELS_PER_PERSONA_MAX: Final = 20
APPROVE: Final = "approve"
"""The scope that sets, moves and removes protected labels."""
_LABEL = re.compile(LABEL_PATTERN)


@dataclass(frozen=True, slots=True)
class Label:
    name: str
    version: int
    set_by: str | None
    set_at: datetime


@dataclass(frozen=True, slots=True)
class LabelEvent:
    """One move of a label: from a version (None when it was set anew) to another (None
    when it was removed)."""

    id: str
    persona_id: str
    label: str
    from_version: int | None
    to_version: int | None
    actor: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class ApprovalPolicy:
    """Which labels need the `approve` scope, and whether their author may approve."""

    protected: frozenset[str] = frozenset({"production"})
    two_person: bool = False


def validate_label(raw: object, field: str = "label") -> str:
    """A label name to read by: `latest` included."""
    if not isinstance(raw, str) or not _LABEL.fullmatch(raw):
        raise InvalidInput(
            field,
            "a label is 1 to 64 characters: lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    return raw


def settable_label(raw: object, field: str = "label") -> str:
    """A label name to set or remove: `latest` is reserved."""
    name = validate_label(raw, field)
    if name == LATEST:
        raise InvalidInput(field, "'latest' always means the current version; it cannot be set")
    return name


def authorize_move(
    principal: Principal,
    label: str,
    policy: ApprovalPolicy,
    author: str | None = None,
    setting: bool = True,
) -> None:
    """May `principal` put `label` on a version made by `author` (or, not `setting`, remove
    it)? Protected labels need `approve`; under two-person approval nobody puts one on their
    own version, and anonymous access can never be the second person."""
    if label not in policy.protected:
        require(principal, "write")
        return
    if APPROVE not in principal.scopes:
        raise Forbidden(f"label {label!r} is protected: moving it needs the 'approve' scope")
    if not (policy.two_person and setting):
        return
    if principal.key_id is None:
        raise Forbidden(
            f"label {label!r} needs a second person's approval, and anonymous access cannot "
            "be the second person: use an API key with the 'approve' scope"
        )
    if principal.key_id == author:
        raise Forbidden(
            f"label {label!r} needs a second person's approval: this version was made by the "
            "same API key, so a second person must approve it"
        )


def check_label_count(current: Collection[str], label: str) -> None:
    if label not in current and len(current) >= LABELS_PER_PERSONA_MAX:
        raise InvalidInput(
            "label", f"a persona carries at most {LABELS_PER_PERSONA_MAX} labels; remove one first"
        )


@dataclass(frozen=True, slots=True)
class PersonaDiff:
    from_version: int
    to_version: int
    name: tuple[str, str] | None
    content_diff: str | None
    metadata_patch: list[dict[str, Any]]


def diff(old: Revision, new: Revision) -> PersonaDiff:
    """What changed from `old` to `new`: the names, a unified diff of the content, and an
    RFC 6902 JSON Patch that turns the old metadata into the new one."""
    content = None
    if old.content != new.content:
        content = "".join(
            difflib.unified_diff(
                old.content.splitlines(keepends=True),
                new.content.splitlines(keepends=True),
                fromfile=f"v{old.version}",
                tofile=f"v{new.version}",
            )
        )
    patch = jsonpatch.make_patch(old.metadata or {}, new.metadata or {})
    return PersonaDiff(
        from_version=old.version,
        to_version=new.version,
        name=None if old.name == new.name else (old.name, new.name),
        content_diff=content,
        metadata_patch=list(patch.patch),
    )
