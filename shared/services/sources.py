"""Event sources: create (with their topic), list, get, revoke, delete, and resolve write keys."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from shared.domain import ids
from shared.domain.errors import Conflict, InvalidRequest, NotFound
from shared.domain.privacy import IpPolicy
from shared.domain.rate_limit import RateLimit
from shared.domain.sources import (
    WRITE_KEYS,
    BotPolicy,
    EventSource,
    SourceType,
    WriteKey,
    process_subscription_id,
    source_path,
    source_topic_id,
    sources_collection,
    write_key_path,
)
from shared.domain.webhooks import WebhookSettings
from shared.ports import AlreadyExists, ConfigStore, DocumentStore, PushPolicy, TopicAdmin, Write

# A collision of 256-bit random keys is not going to happen; the retry exists so that a
# broken random source fails loudly instead of handing one key to two sources.
KEY_ATTEMPTS = 3


class WriteKeyResolver(Protocol):
    """What ingest asks of the sources: the record behind a write key."""

    def resolve_write_key(self, key: str) -> WriteKey | None: ...


class WriteKeys:
    """Resolves write keys on a store it only reads: what the ingest function needs of the
    sources, without their topics (`EventSources` resolves keys through one of these)."""

    def __init__(self, store: DocumentStore):
        self._store = store

    def resolve_write_key(self, key: str) -> WriteKey | None:
        """The record behind a write key, active or not; None when the key is unknown."""
        if not key.startswith(ids.WRITE_KEY_PREFIX):
            return None
        document = self._store.get(write_key_path(key))
        if not document:
            return None
        if "type" not in document:
            # Written before key records carried the source's type (webhook sources, issue 26):
            # the source says, once per key and cache lifetime, until the record is rewritten.
            source = self._store.get(source_path(document["workspace_id"], document["source_id"]))
            document = {**document, "type": (source or {}).get("type", "server")}
        return WriteKey.model_validate(document)


class EventSources:
    """The event-source use cases; every call is scoped to one workspace."""

    def __init__(
        self,
        store: ConfigStore,
        topics: TopicAdmin,
        process_push: PushPolicy | None = None,
        clock: Callable[[], datetime] = ids.utcnow,
        new_key: Callable[[], str] = ids.new_write_key,
    ):
        self._store = store
        self._write_keys = WriteKeys(store)
        self._topics = topics
        self._process_push = process_push
        self._clock = clock
        self._new_key = new_key

    def create(
        self,
        workspace_id: str,
        name: str,
        created_by: str,
        type: SourceType = "server",
        ip_policy: IpPolicy = "keep",
        allowed_origins: Sequence[str] = (),
        bot_policy: BotPolicy = "keep",
        cookieless: bool = False,
    ) -> EventSource:
        source_id = ids.new_id()
        # The topic comes first: a source must never exist without the topic its events go to.
        topic = self._topics.ensure_topic(source_topic_id(source_id))
        self.wire(source_id, topic)
        now = ids.isoformat(self._clock())
        for _ in range(KEY_ATTEMPTS):
            source = EventSource(
                id=source_id,
                workspace_id=workspace_id,
                name=name,
                type=type,
                key=self._new_key(),
                status="active",
                pubsub_topic=topic,
                created_by=created_by,
                created_at=now,
                updated_at=now,
                ip_policy=ip_policy,
                allowed_origins=list(allowed_origins),
                bot_policy=bot_policy,
                cookieless=cookieless,
            )
            try:
                self._store.commit(
                    [
                        Write(
                            "create",
                            write_key_path(source.key),
                            source.write_key_record().stored(),
                        ),
                        Write("create", source_path(workspace_id, source_id), source.stored()),
                    ]
                )
                return source
            except AlreadyExists:
                continue
        raise RuntimeError("could not generate a unique write key")

    def wire(self, source_id: str, topic: str) -> None:
        """Subscribe `process` to a source's topic (idempotent; re-points a moved endpoint)."""
        if self._process_push is not None:
            self._topics.ensure_push_subscription(
                topic, process_subscription_id(source_id), self._process_push
            )

    def wire_all(self) -> int:
        """Wire every source of every workspace (local restarts; production uses the same call)."""
        keys = [WriteKey.model_validate(d) for d in self._store.list_documents(WRITE_KEYS)]
        for key in keys:
            self.wire(key.source_id, key.pubsub_topic)
        return len(keys)

    def list(self, workspace_id: str) -> list[EventSource]:
        documents = self._store.list_documents(sources_collection(workspace_id))
        return sorted((EventSource.model_validate(d) for d in documents), key=_creation_order)

    def get(self, workspace_id: str, source_id: str, field: str = "keyId") -> EventSource:
        """A source of the workspace; `NotFound` naming `field` (the caller's name for the id)."""
        if not source_id:
            # Sent as `"sourceId": ""`: a value left out by mistake, better said so than 404.
            raise InvalidRequest(f"{field} must not be empty", field=field)
        document = self._store.get(source_path(workspace_id, source_id))
        if document is None:
            raise NotFound(f"event source {source_id} not found", field=field)
        return EventSource.model_validate(document)

    def revoke(self, workspace_id: str, source_id: str) -> EventSource:
        """Mark the source revoked; its key stops working for ingest. Idempotent."""
        source = self.get(workspace_id, source_id)
        if source.status == "revoked":
            return source
        revoked = source.model_copy(
            update={"status": "revoked", "updated_at": ids.isoformat(self._clock())}
        )
        self._store.commit(
            [
                Write("set", write_key_path(source.key), revoked.write_key_record().stored()),
                Write("set", source_path(workspace_id, source_id), revoked.stored()),
            ]
        )
        return revoked

    def delete(self, workspace_id: str, source_id: str, field: str = "keyId") -> None:
        """Delete the source (DELETE /v1/streams/sources/{id}; DELETE .../event-keys/{id}
        revokes instead): it leaves every list, its key stops working within ingest's write-key
        cache interval (unknown, 401), its topic is deleted and its subscription retired. Its
        stored events stay queryable.

        Pub/Sub first: every step is idempotent, so a failure part-way leaves a source whose
        DELETE can simply be sent again, never a topic no source owns.
        """
        source = self.get(workspace_id, source_id, field=field)
        self._topics.delete_topic(source.pubsub_topic)
        self._topics.retire_subscription(process_subscription_id(source_id))
        self._store.commit(
            [
                Write("delete", write_key_path(source.key)),
                Write("delete", source_path(workspace_id, source_id)),
            ]
        )

    def set_ip_policy(self, workspace_id: str, source_id: str, policy: IpPolicy) -> EventSource:
        """Change what ingest does with the source's `context.ip`."""
        return self._set_key_fields(workspace_id, source_id, ip_policy=policy)

    def set_privacy(
        self,
        workspace_id: str,
        source_id: str,
        ip_policy: IpPolicy,
        bot_policy: BotPolicy,
        cookieless: bool,
    ) -> EventSource:
        """Replace the source's privacy settings: its IP policy and cookieless mode (ingest's,
        within its write-key cache interval) and its bot policy (process', within its config
        cache interval)."""
        return self._set_key_fields(
            workspace_id,
            source_id,
            ip_policy=ip_policy,
            bot_policy=bot_policy,
            cookieless=cookieless,
        )

    def set_allowed_origins(
        self, workspace_id: str, source_id: str, origins: Sequence[str]
    ) -> EventSource:
        """Replace the web origins that may send with the source's key (canonical, as the API
        validated them; empty allows any)."""
        return self._set_key_fields(workspace_id, source_id, allowed_origins=list(origins))

    def set_rate_limit(
        self, workspace_id: str, source_id: str, limit: RateLimit | None
    ) -> EventSource:
        """Set the events per second ingest admits for the source (None: no limit)."""
        return self._set_key_fields(workspace_id, source_id, rate_limit=limit)

    def webhook_source(self, workspace_id: str, source_id: str) -> EventSource:
        """A source of type `webhook`; `Conflict` naming `type` for a source of another type."""
        source = self.get(workspace_id, source_id)
        if source.type != "webhook":
            raise Conflict(
                f"event source {source_id} is of type {source.type}: only a webhook source has "
                "webhook settings (create one with type webhook)",
                field="type",
            )
        return source

    def set_webhook(
        self, workspace_id: str, source_id: str, settings: WebhookSettings, keep_secret: bool
    ) -> EventSource:
        """Replace a webhook source's settings; `keep_secret`: the stored secret stays (the
        caller sent none, as the secret is never answered for it to send back)."""
        source = self.webhook_source(workspace_id, source_id)
        if keep_secret and source.webhook is not None:
            settings = settings.model_copy(update={"secret": source.webhook.secret})
        if settings.signature != "none" and settings.secret is None:
            raise InvalidRequest(
                f"secret: signature {settings.signature} needs a secret (none is stored)",
                field="secret",
            )
        if settings.signature == "hmac" and not settings.signature_header:
            raise InvalidRequest(
                "signature_header: signature hmac needs the header the signature comes in",
                field="signature_header",
            )
        return self._set_key_fields(workspace_id, source_id, webhook=settings)

    def _set_key_fields(self, workspace_id: str, source_id: str, **fields: Any) -> EventSource:
        """Change fields the write-key record carries, in the source and the record at once:
        ingest applies them within its write-key cache interval (as for a revocation)."""
        source = self.get(workspace_id, source_id)
        if all(getattr(source, name) == value for name, value in fields.items()):
            return source
        changed = source.model_copy(update={**fields, "updated_at": ids.isoformat(self._clock())})
        self._store.commit(
            [
                Write("set", write_key_path(source.key), changed.write_key_record().stored()),
                Write("set", source_path(workspace_id, source_id), changed.stored()),
            ]
        )
        return changed

    def resolve_write_key(self, key: str) -> WriteKey | None:
        """The record behind a write key, active or not; None when the key is unknown."""
        return self._write_keys.resolve_write_key(key)


def _creation_order(source: EventSource) -> tuple[str, str]:
    return (source.created_at, source.id)
