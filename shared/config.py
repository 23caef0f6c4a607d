"""Settings: read once from the environment, typed, failing fast on bad values."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

from shared.domain.signing import MIN_KEY_CHARS

N = TypeVar("N", int, float)

# Signs messages on the local emulator only: anyone can read it here.
LOCAL_MESSAGE_SIGNING_KEY = "local-emulator-only-signing-key-not-a-secret"
# Salts cookieless sources' ids on the local emulator only: anyone can read it here.
LOCAL_COOKIELESS_KEY = "local-emulator-only-cookieless-key-not-a-secret"

TRUE_VALUES = {"1", "true", "yes", "on"}
FALSE_VALUES = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    """Everything configurable about a Streams deployment."""

    project_id: str
    bigquery_dataset: str = "streams"
    # Set only against the local emulator; production uses the default endpoint.
    bigquery_emulator_url: str | None = None
    # Pub/Sub is the local emulator (PUBSUB_EMULATOR_HOST set): push subscriptions differ there
    # (no retry policy: the emulator stops pushing a message that failed for a while under one).
    pubsub_emulator: bool = False
    # Lets destinations reach loopback/private addresses: local development and tests only.
    allow_private_destinations: bool = False
    # How many X-Forwarded-For entries, from the right, the proxies in front of the functions
    # append (shared/http/body.py client_ip): 2 behind Google's load balancer (`client,lb`), 1
    # behind the local gateway. 0 ignores the header: anyone can send it.
    trusted_proxy_hops: int = 0
    # How long ingest trusts a cached write-key lookup; bounds how late a revocation bites.
    write_key_cache_seconds: float = 5.0
    # How long process and deliver trust cached rules, destinations and contracts.
    config_cache_seconds: float = 5.0
    # The deduplication window's store (docs/ARCHITECTURE.md, "process"): the Valkey at this URL
    # (Memorystore for Valkey; valkey-server under `make dev`), else Firestore documents.
    valkey_url: str | None = None
    # Memorystore's IAM authentication: the function's access token as the password.
    valkey_iam_auth: bool = False
    # Where Pub/Sub pushes source topics (the process function). Production: its HTTPS URL,
    # with OIDC tokens for `push_service_account`; locally the process function's port.
    process_push_endpoint: str | None = None
    push_service_account: str | None = None
    # Where Pub/Sub pushes each destination's deliveries topic (the deliver function).
    deliver_push_endpoint: str | None = None
    dead_letters_topic: str = "streams-dead-letters"
    # The HMAC key signing every message on Streams' own topics (shared/domain/signing.py).
    # Production sets its own (Terraform makes one); the local key serves the emulator and the
    # tests only. None (the CLI, which publishes nothing) fails on the first publish or push.
    message_signing_key: str | None = LOCAL_MESSAGE_SIGNING_KEY
    # Only while upgrading from a version that published unsigned messages (docs/DEPLOY.md).
    accept_unsigned_messages: bool = False
    # The identity deliver publishes to customers' topics with (impersonated): one that holds no
    # role on Streams' own topics. None locally, where the emulator has no identities.
    customer_publisher_service_account: str | None = None
    # IAM members granted roles/pubsub.publisher on each source topic and each deliveries topic
    # as it is wired (production: the functions that publish to them; nobody holds publishing on
    # the whole project). Empty locally, where the emulator has no IAM.
    # Production: the private `wiring` function's URL. The functions that create sources and
    # destinations then wire through it and hold no Pub/Sub wiring rights themselves; unset,
    # they wire directly (locally, the CLI, and the wiring function itself).
    wiring_url: str | None = None
    source_topic_publishers: tuple[str, ...] = ()
    delivery_topic_publishers: tuple[str, ...] = ()
    # Redelivery backoff of failed deliveries: their retry schedule.
    delivery_min_backoff_seconds: float = 10.0
    delivery_max_backoff_seconds: float = 600.0
    # Attempts per delivery before it is dead-lettered (Pub/Sub redelivers with backoff between).
    delivery_max_attempts: int = 8
    # Pushes of one source message to `process` before Pub/Sub dead-letters it (Pub/Sub allows
    # 5-100), and the longest wait between them: 100 pushes backing off 1 s to 60 s span about
    # 95 minutes, the longest outage of BigQuery or Firestore ridden out without a replay.
    process_max_attempts: int = 100
    process_max_backoff_seconds: float = 60.0
    # Transformations (docs/TRANSFORMATIONS.md): CPU time per event, heap per sandbox context,
    # and the largest result a transformation may return.
    transform_cpu_ms: int = 100
    transform_memory_mb: int = 64
    transform_output_kb: int = 32
    # Sum of the heaps of the transformation calls running at once in one instance: below the
    # function's memory (deliver: 2 GiB), so 32 threads cannot each fill a 64 MB heap.
    transform_sandbox_memory_mb: int = 512
    # Live streams (docs/OBSERVE.md): each holds one of the `events` function's request threads,
    # so an instance serves at most this many at once (from_env: half of gunicorn's THREADS)
    # and one API token at most `live_streams_per_token` of them; beyond, 429.
    live_streams_per_instance: int = 4
    live_streams_per_token: int = 4
    # The secret cookieless sources' daily salts are derived from (shared/domain/cookieless.py):
    # production's is in Secret Manager (Terraform makes one), the local key serves the emulator
    # and the tests. None: ingest refuses (503) the events of a cookieless source.
    cookieless_key: str | None = LOCAL_COOKIELESS_KEY
    # The MaxMind-format City database ingest fills context.location from (docs/PRIVACY.md): an
    # absolute path, or one relative to the source tree. None: no geo enrichment.
    geo_database: str | None = None
    # Benchmarks only: each process writes its counts of billed operations (Firestore, Pub/Sub,
    # BigQuery, requests) under this directory (shared/adapters/operation_counts.py).
    operation_counts_dir: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """Build settings from environment variables; raise ValueError on a bad value."""
        project_id = env.get("STREAMS_PROJECT_ID") or env.get("GOOGLE_CLOUD_PROJECT")
        if not project_id:
            raise ValueError("STREAMS_PROJECT_ID (or GOOGLE_CLOUD_PROJECT) must be set")
        return cls(
            project_id=project_id,
            bigquery_dataset=env.get("STREAMS_BIGQUERY_DATASET", "streams"),
            bigquery_emulator_url=env.get("BIGQUERY_EMULATOR_URL") or None,
            pubsub_emulator=bool(env.get("PUBSUB_EMULATOR_HOST")),
            allow_private_destinations=_flag(env, "STREAMS_ALLOW_PRIVATE_DESTINATIONS"),
            trusted_proxy_hops=_integer(env, "STREAMS_TRUSTED_PROXY_HOPS", 0, 0, 10),
            write_key_cache_seconds=_seconds(env, "STREAMS_WRITE_KEY_CACHE_SECONDS", 5.0),
            config_cache_seconds=_seconds(env, "STREAMS_CONFIG_CACHE_SECONDS", 5.0),
            valkey_url=_valkey_url(env),
            valkey_iam_auth=_flag(env, "STREAMS_VALKEY_IAM_AUTH"),
            process_push_endpoint=env.get("STREAMS_PROCESS_PUSH_ENDPOINT") or None,
            push_service_account=env.get("STREAMS_PUSH_SERVICE_ACCOUNT") or None,
            deliver_push_endpoint=env.get("STREAMS_DELIVER_PUSH_ENDPOINT") or None,
            delivery_min_backoff_seconds=_number(env, "STREAMS_DELIVERY_MIN_BACKOFF", 10.0, 0, 600),
            delivery_max_backoff_seconds=_number(
                env, "STREAMS_DELIVERY_MAX_BACKOFF", 600.0, 0, 600
            ),
            dead_letters_topic=env.get("STREAMS_DEAD_LETTERS_TOPIC", "streams-dead-letters"),
            message_signing_key=_secret_key(
                env, "STREAMS_MESSAGE_SIGNING_KEY", LOCAL_MESSAGE_SIGNING_KEY
            ),
            accept_unsigned_messages=_flag(env, "STREAMS_ACCEPT_UNSIGNED_MESSAGES"),
            customer_publisher_service_account=(
                env.get("STREAMS_CUSTOMER_PUBLISHER_SERVICE_ACCOUNT") or None
            ),
            wiring_url=env.get("STREAMS_WIRING_URL") or None,
            source_topic_publishers=_members(env, "STREAMS_SOURCE_TOPIC_PUBLISHERS"),
            delivery_topic_publishers=_members(env, "STREAMS_DELIVERY_TOPIC_PUBLISHERS"),
            delivery_max_attempts=_integer(env, "STREAMS_DELIVERY_MAX_ATTEMPTS", 8, 1, 100),
            process_max_attempts=_integer(env, "STREAMS_PROCESS_MAX_ATTEMPTS", 100, 5, 100),
            process_max_backoff_seconds=_number(env, "STREAMS_PROCESS_MAX_BACKOFF", 60.0, 1, 600),
            transform_cpu_ms=_integer(env, "STREAMS_TRANSFORM_CPU_MS", 100, 1, 10_000),
            # quickjs-ng itself crashes on a memory bomb under a 4 MB heap: 8 MB is the floor.
            transform_memory_mb=_integer(env, "STREAMS_TRANSFORM_MEMORY_MB", 64, 8, 1024),
            transform_output_kb=_integer(env, "STREAMS_TRANSFORM_OUTPUT_KB", 32, 1, 1024),
            transform_sandbox_memory_mb=_integer(
                env, "STREAMS_TRANSFORM_SANDBOX_MEMORY_MB", 512, 8, 16_384
            ),
            live_streams_per_instance=_live_streams_per_instance(env),
            live_streams_per_token=_integer(env, "STREAMS_LIVE_STREAMS_PER_TOKEN", 4, 1, 1000),
            operation_counts_dir=env.get("STREAMS_OPERATION_COUNTS_DIR") or None,
            cookieless_key=_secret_key(env, "STREAMS_COOKIELESS_KEY", LOCAL_COOKIELESS_KEY),
            geo_database=env.get("STREAMS_GEO_DATABASE") or None,
        )


def _secret_key(env: Mapping[str, str], name: str, local_key: str) -> str | None:
    """A key from Secret Manager (as an environment variable): `local_key` when unset on the
    emulators, None when unset elsewhere; a short key, or the local one, is refused."""
    key = env.get(name, "")
    if not key:
        return local_key if env.get("PUBSUB_EMULATOR_HOST") else None
    if len(key) < MIN_KEY_CHARS or key == local_key:
        raise ValueError(f"{name} must be a secret of at least {MIN_KEY_CHARS} characters")
    return key


def _live_streams_per_instance(env: Mapping[str, str]) -> int:
    # functions-framework's gunicorn serves THREADS requests at once (default 4 per CPU): streams
    # may take at most all but one, so that other requests always find a thread.
    threads = _integer(env, "THREADS", (os.cpu_count() or 1) * 4, 1, 100_000)
    return _integer(
        env, "STREAMS_LIVE_STREAMS_PER_INSTANCE", max(1, threads // 2), 1, max(1, threads - 1)
    )


def _valkey_url(env: Mapping[str, str]) -> str | None:
    url = env.get("STREAMS_VALKEY_URL") or None
    if url is not None and not re.match(r"^(valkeys?|rediss?)://[^/\s]+(/\d*)?$", url):
        raise ValueError(
            "STREAMS_VALKEY_URL must be valkey://host:port or redis://host:port (rediss:// for "
            f"TLS), with an optional /database number; got {url!r}"
        )
    return url


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise ValueError(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    return _bounded(env, name, default, low, high, float)


def _integer(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    return _bounded(env, name, default, low, high, int)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    # Caches bound how late a revocation or a config change bites: the promise is 10 s.
    return _number(env, name, default, 0, 10)


def _bounded(
    env: Mapping[str, str], name: str, default: N, low: float, high: float, kind: type[N]
) -> N:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be {KIND_NAMES[kind]}, got {raw!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value}")
    return value


KIND_NAMES = {int: "an integer", float: "a number"}


@cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return Settings.from_env()


IAM_MEMBER = re.compile(r"^(serviceAccount|user|group):[^\s,@]+@[^\s,@]+$")


def _members(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of IAM members (`serviceAccount:<email>`), checked for shape so a
    typo fails at start-up rather than as a refused grant when a topic is wired."""
    members = tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())
    for member in members:
        if not IAM_MEMBER.match(member):
            raise ValueError(
                f"{name}: {member!r} is not an IAM member such as serviceAccount:<email>"
            )
    return members
