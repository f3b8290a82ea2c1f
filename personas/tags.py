"""`Persona.tags`: metadata.tags seen as a typed list of strings."""

from __future__ import annotations


def tags_of(metadata: object) -> list[str]:
    """The tags a `{path: "tags", value: "<tag>"}` filter finds this persona by: the strings
    of a `tags` list (in order, each once), a lone string, else none."""
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    if isinstance(tags, str):
        return [tags]
    if isinstance(tags, list):
        return list(dict.fromkeys(tag for tag in tags if isinstance(tag, str)))
    return []
