"""Labels in MongoDB: each persona document carries its labels; each set label has a
release document (a copy of the labelled revision, so that listing one label's releases
reads those versions only); every move is appended to the label history. A move, its
release and its history entry share one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from bson import ObjectId
from pymongo.asynchronous.client_session import AsyncClientSession

from personas.domain import (
    LATEST,
    ApprovalPolicy,
    Conflict,
    Cursor,
    Found,
    Label,
    LabelEventPage,
    NotFound,
    Once,
    PersonaQuery,
    Principal,
    Revision,
    authorize_move,
    check_label_count,
    now,
    require,
)
from personas.domain.events import EventType
from personas.store import documents
from personas.store import query as q
from personas.store.database import Database
from personas.store.errors import translated
from personas.store.events import EventLog, label_move

RELEASE_KEY: Final = [("tenant", 1), ("persona_id", 1), ("label", 1)]
HISTORY_INDEX: Final = [("tenant", 1), ("persona_id", 1), ("label", 1), ("_id", -1)]
PERSONA_HISTORY_INDEX: Final = [("tenant", 1), ("persona_id", 1), ("_id", -1)]


class LabelConflict(Conflict):
    """A compare-and-set of a label found it elsewhere (or unset: `current_version` None)."""


class LabelStore:
    def __init__(
        self,
        database: Database,
        indexed_fields: Sequence[str],
        approval: ApprovalPolicy,
        events: EventLog,
    ) -> None:
        self._database = database
        self._events = events
        self._indexed_fields = indexed_fields
        self.approval = approval

    async def ensure_indexes(self) -> None:
        releases = self._database.releases
        await releases.create_index(RELEASE_KEY, unique=True)
        for keys in (*q.ORDER_INDEXES.values(), *map(q.path_index, self._indexed_fields)):
            await releases.create_index(q.release_index(keys))
        await self._database.label_events.create_index(HISTORY_INDEX)
        await self._database.label_events.create_index(PERSONA_HISTORY_INDEX)

    # reads

    async def target(self, principal: Principal, persona_id: str, label: str) -> Revision | None:
        """The version `label` points at (`latest`: the current one); None when unset."""
        require(principal, "read")
        database = self._database
        with translated():
            if label == LATEST:
                current = await database.personas.find_one(
                    q.scoped(principal.tenant, {"_id": ObjectId(persona_id)}), {"version": True}
                )
                if current is None:
                    return None
                document = await database.revisions.find_one(
                    q.scoped(
                        principal.tenant,
                        {"persona_id": ObjectId(persona_id), "version": current["version"]},
                    )
                )
            else:
                document = await database.releases.find_one(
                    q.scoped(
                        principal.tenant,
                        q.release_scope(label),
                        {"persona_id": ObjectId(persona_id)},
                    )
                )
        return None if document is None else documents.revision(document)

    async def of(self, principal: Principal, persona_ids: Sequence[str]) -> list[list[Label]]:
        """The labels of each persona (none for an unknown one), in the order asked."""
        require(principal, "read")
        with translated():
            found = await self._database.personas.find(
                q.scoped(principal.tenant, {"_id": {"$in": [ObjectId(i) for i in persona_ids]}}),
                {"labels": True},
            ).to_list(None)
        by_id = {
            str(item["_id"]): [documents.label(label) for label in item.get("labels", ())]
            for item in found
        }
        return [by_id.get(persona_id, []) for persona_id in persona_ids]

    async def releases(
        self,
        principal: Principal,
        label: str,
        query: PersonaQuery,
        first: int,
        after: Cursor | None = None,
    ) -> Found[Revision]:
        """One page of the personas carrying `label`: the labelled versions, filtered by
        their own metadata, in the listing's order."""
        require(principal, "read")
        scope = [q.release_scope(label)]
        pipeline = q.listing_pipeline(principal.tenant, query, first, after, scope)
        with translated():
            cursor = await self._database.releases.aggregate(pipeline, **self._hint(query))
            found = await cursor.to_list(first + 1)
        items = found[:first]
        return Found(
            items=[documents.revision(item) for item in items],
            positions=[q.position(item, query) for item in items],
            has_next=len(found) > first,
        )

    async def count_releases(self, principal: Principal, label: str, query: PersonaQuery) -> int:
        require(principal, "read")
        condition = q.listing_filter(principal.tenant, query, [q.release_scope(label)])
        with translated():
            return await self._database.releases.count_documents(condition, **self._hint(query))

    def _hint(self, query: PersonaQuery) -> dict[str, Any]:
        return q.hint(query, self._indexed_fields, q.release_index)

    async def explain_releases(
        self, principal: Principal, label: str, query: PersonaQuery
    ) -> dict[str, Any]:
        """The server's execution statistics for a release listing's filter."""
        condition = q.listing_filter(principal.tenant, query, [q.release_scope(label)])
        with translated():
            result: dict[str, Any] = await self._database.db.command(
                "explain",
                {"find": self._database.releases.name, "filter": condition, **self._hint(query)},
                verbosity="executionStats",
            )
        return result

    async def history(
        self,
        principal: Principal,
        persona_id: str,
        label: str | None,
        first: int,
        before: str | None = None,
    ) -> LabelEventPage:
        """Label moves of a persona (of one label, or all), newest first."""
        require(principal, "read")
        condition: dict[str, Any] = {"persona_id": ObjectId(persona_id)}
        if label is not None:
            condition["label"] = label
        if before is not None:
            condition["_id"] = {"$lt": ObjectId(before)}
        with translated():
            found = await self._database.label_events.find(
                q.scoped(principal.tenant, condition), sort=[("_id", -1)], limit=first + 1
            ).to_list(first + 1)
        return LabelEventPage(
            items=[documents.label_event(item) for item in found[:first]],
            has_next=len(found) > first,
        )

    # writes

    async def set(
        self,
        principal: Principal,
        persona_id: str,
        label: str,
        version: int,
        from_version: int | None = None,
        once: Once | None = None,
    ) -> Label:
        """Point `label` at `version`; with `from_version`, only if it points there now."""
        require(principal, "read")
        database = self._database

        async def work(session: AsyncClientSession) -> dict[str, Any]:
            persona = await self._persona(principal, persona_id, session)
            revision = await database.revisions.find_one(
                q.scoped(principal.tenant, {"persona_id": persona["_id"], "version": version}),
                session=session,
            )
            if revision is None:
                raise NotFound(f"version: persona {persona_id} has no version {version}")
            authorize_move(principal, label, self.approval, author=revision.get("actor"))
            labels = {item["name"]: item for item in persona.get("labels", ())}
            was = _compare(labels, label, from_version)
            check_label_count(labels, label)
            moment = now()
            labels[label] = {
                "name": label,
                "version": version,
                "set_by": principal.key_id,
                "set_at": moment,
            }
            await self._write_labels(persona, labels, session)
            release = {field: revision.get(field) for field in documents.RELEASE_FIELDS}
            await database.releases.update_one(
                {"tenant": principal.tenant, "persona_id": persona["_id"], "label": label},
                {
                    "$set": {
                        **release,
                        "version": version,
                        "set_by": principal.key_id,
                        "updated_at": moment,
                    }
                },
                upsert=True,
                session=session,
            )
            await self._moved(principal, persona["_id"], label, was, version, moment, session)
            return dict(labels[label])

        return documents.label(
            await database.transaction(database.once(principal.tenant, once, work))
        )

    async def remove(
        self,
        principal: Principal,
        persona_id: str,
        label: str,
        from_version: int | None = None,
        once: Once | None = None,
    ) -> None:
        """Take `label` off the persona; with `from_version`, only if it points there now."""
        authorize_move(principal, label, self.approval, setting=False)
        database = self._database

        async def work(session: AsyncClientSession) -> dict[str, Any]:
            persona = await self._persona(principal, persona_id, session)
            labels = {item["name"]: item for item in persona.get("labels", ())}
            if label not in labels:
                raise NotFound(f"label: persona {persona_id} has no label {label!r}")
            was = _compare(labels, label, from_version)
            del labels[label]
            await self._write_labels(persona, labels, session)
            await database.releases.delete_one(
                {"tenant": principal.tenant, "persona_id": persona["_id"], "label": label},
                session=session,
            )
            await self._moved(principal, persona["_id"], label, was, None, now(), session)
            return {"removed": label}

        await database.transaction(database.once(principal.tenant, once, work))

    async def remove_all(
        self, principal: Principal, persona: Mapping[str, Any], session: AsyncClientSession
    ) -> None:
        """A deleted persona's labels go with it (inside the deletion's transaction); the
        history records each removal."""
        database = self._database
        await database.releases.delete_many(
            {"tenant": principal.tenant, "persona_id": persona["_id"]}, session=session
        )
        moment = now()
        for item in persona.get("labels", ()):
            await self._moved(
                principal, persona["_id"], item["name"], item["version"], None, moment, session
            )

    async def _persona(
        self, principal: Principal, persona_id: str, session: AsyncClientSession
    ) -> dict[str, Any]:
        found = await self._database.personas.find_one(
            q.scoped(principal.tenant, {"_id": ObjectId(persona_id)}),
            {"labels": True, "version": True},
            session=session,
        )
        if found is None:
            raise NotFound(f"persona {persona_id} not found")
        return found

    async def _write_labels(
        self,
        persona: Mapping[str, Any],
        labels: Mapping[str, Mapping[str, Any]],
        session: AsyncClientSession,
    ) -> None:
        await self._database.personas.update_one(
            {"_id": persona["_id"]},
            {"$set": {"labels": [labels[name] for name in sorted(labels)]}},
            session=session,
        )

    async def _moved(
        self,
        principal: Principal,
        persona_id: ObjectId,
        label: str,
        from_version: int | None,
        to_version: int | None,
        moment: Any,
        session: AsyncClientSession,
    ) -> None:
        """A label move in the label history, and its event in the log (with the version
        the label points at, or pointed at before it was removed)."""
        entry = await self._database.label_events.insert_one(
            {
                "tenant": principal.tenant,
                "persona_id": persona_id,
                "label": label,
                "from_version": from_version,
                "to_version": to_version,
                "actor": principal.key_id,
                "at": moment,
            },
            session=session,
        )
        version = to_version if to_version is not None else from_version
        revision = await self._database.revisions.find_one(
            q.scoped(principal.tenant, {"persona_id": persona_id, "version": version}),
            q.HIDDEN,
            session=session,
        )
        assert revision is not None, "a label points at an existing revision"
        state = None
        if to_version is not None:
            state = {"name": label, "version": to_version, "set_by": principal.key_id}
            state["set_at"] = moment
        await self._events.append(
            session,
            principal.tenant,
            EventType.LABEL_MOVED,
            revision,
            principal.key_id,
            moment,
            label=state,
            move=label_move(entry.inserted_id, label, from_version, to_version),
        )


def _compare(
    labels: Mapping[str, Mapping[str, Any]], label: str, from_version: int | None
) -> int | None:
    """The version `label` points at now, after checking it is `from_version` if given."""
    current = labels.get(label)
    was: int | None = None if current is None else current["version"]
    if from_version is not None and was != from_version:
        where = "is not set" if was is None else f"points at version {was}"
        raise LabelConflict(f"label {label!r} {where}, not {from_version}", current_version=was)
    return was
