"""Fault injection on the local stack (docs/RELIABILITY.md, section 5).

Each test starts a whole stack of its own (three emulators, every function, the gateway) on free
ports, injects one fault while a client sends events, and then accounts for every event the
client was told was accepted (200): delivered exactly once to the webhook, or recorded by the
API as not delivered, with a reason. Figures go to bench/results/faults-latest.json.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from typing import Any

import pytest

from tests.e2e.helpers import Tenant
from tests.reliability.faults.accounting import (
    Accounting,
    Client,
    Ledger,
    account,
    dead_letters,
    record,
    replay_dead_letters,
)
from tests.reliability.faults.conftest import StackFactory
from tests.reliability.faults.receiver import Destination
from tests.reliability.faults.stack import FaultStack, wait_for

pytestmark = pytest.mark.timeout(1200)


class Traffic:
    """A client sending single calls and small batches at a steady pace in the background."""

    def __init__(self, client: Client, write_key: str, prefix: str, per_second: float = 4.0):
        self.client = client
        self.write_key = write_key
        self.prefix = prefix
        self.interval = 1.0 / per_second
        self.numbers = count()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def burst(self, events: int) -> None:
        """Send `events` now, in the foreground, alternating single calls and batches of 3."""
        sent = 0
        while sent < events:
            sent += self._send_one()

    def start(self, senders: int = 2) -> None:
        for _ in range(senders):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.client.give_up_seconds + 60)
        self._threads.clear()
        self._stop.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self._send_one()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def _send_one(self) -> int:
        n = next(self.numbers)
        if n % 2:
            ids = [f"{self.prefix}-{n}-{k}" for k in range(3)]
            self.client.batch(self.write_key, ids, n * 3)
            return len(ids)
        self.client.single(self.write_key, f"{self.prefix}-{n}", n)
        return 1


def webhook_tenant(stack: FaultStack, destination: Destination) -> tuple[Tenant, str]:
    tenant = stack.tenant()
    destination_id = tenant.webhook(destination.url)
    tenant.rule(destination_id)
    return tenant, destination_id


def assert_accounted(result: Accounting, ledger: Ledger) -> None:
    """The promise: nothing acknowledged is lost, nothing is delivered twice, no 5xx but 503."""
    assert not ledger.server_errors, ledger.server_errors[:5]
    assert ledger.unavailable_without_retry_after == 0
    assert ledger.unavailable_not_json == 0
    assert result.missing == [], f"{len(result.missing)} acknowledged events lost"
    assert result.unexpected == []
    assert result.duplicated == {}, f"{len(result.duplicated)} events delivered more than once"
    assert result.delivered_once + len(result.recorded) == result.acknowledged


def figures(ledger: Ledger, result: Accounting, **extra: Any) -> dict[str, Any]:
    return {**ledger.figures(), **result.figures(), **extra}


@pytest.mark.reliability
def test_a_destination_down_for_a_while_then_back(fault_stack: StackFactory) -> None:
    stack = fault_stack()
    with Destination() as destination:
        tenant, destination_id = webhook_tenant(stack, destination)
        ledger = Ledger()
        traffic = Traffic(Client(stack.gateway_url, ledger), tenant.write_key, "down")
        traffic.burst(20)
        traffic.start()
        time.sleep(3)
        destination.down()
        down_for = 25.0  # longer than the 8 attempts' backoff: some deliveries exhaust them
        time.sleep(down_for)
        destination.up()
        time.sleep(5)
        traffic.stop()
        first = account(tenant, ledger, destination, timeout=180)
        letters = dead_letters(tenant, destination_id)
        replay = replay_dead_letters(tenant, destination_id) if letters else {"replayed": []}
        final = account(tenant, ledger, destination, timeout=180)

    record(
        "destination_down",
        figures(
            ledger,
            final,
            down_seconds=down_for,
            dead_lettered_before_replay=len(letters),
            replayed=len(replay["replayed"]),
            first_pass=first.figures(),
        ),
    )
    # Dead-lettered while the destination was down, and only for that reason.
    assert {letter["reason_code"] for letter in letters} <= {"retries_exhausted"}
    assert len(letters) == len(first.recorded)
    assert_accounted(first, ledger)
    assert_accounted(final, ledger)
    assert final.recorded == {}, "every dead letter was delivered once replayed"


@pytest.mark.reliability
def test_the_deliver_function_killed_mid_delivery(fault_stack: StackFactory) -> None:
    stack = fault_stack()
    # A slow destination, so that deliveries are in flight when deliver is killed.
    with Destination(delay_seconds=1.0) as destination:
        tenant, _ = webhook_tenant(stack, destination)
        ledger = Ledger()
        traffic = Traffic(Client(stack.gateway_url, ledger), tenant.write_key, "kill", 6)
        traffic.start()
        kills: list[int] = []
        for _ in range(2):
            assert wait_for(lambda: len(destination.in_flight()) >= 3, timeout=120)
            in_flight = {r.message_id for r in destination.in_flight()}
            stack.kill_function("deliver")
            kills.append(len(in_flight))
            time.sleep(3)
            stack.start_function("deliver")
            time.sleep(5)
        traffic.stop()
        result = account(tenant, ledger, destination, timeout=180)
        receipts = destination.received()

    extra_copies = sum(n - 1 for n in result.duplicated.values())
    record(
        "deliver_killed",
        figures(
            ledger,
            result,
            kills=len(kills),
            in_flight_at_kills=kills,
            duplicates_with_same_idempotency_key=extra_copies,
        ),
    )
    assert not ledger.server_errors
    assert result.missing == []
    assert result.recorded == {}
    # A delivery cut between sending and recording is sent again (documented in
    # docs/ARCHITECTURE.md): only those can arrive twice, and always with the same
    # Idempotency-Key, so that the receiver can recognise the resend.
    assert extra_copies <= sum(kills)
    for receipt in receipts:
        assert receipt.idempotency_key == receipt.message_id


# In `make reliability` since session 11, to keep `make test` within its 15 minutes: the
# REST adapters' outage answers are checked on the emulators in tests/integration/
# test_rest_adapters.py, and ingest's 503 in tests/unit.
@pytest.mark.reliability
def test_ingest_answers_503_while_firestore_is_stopped(fault_stack: StackFactory) -> None:
    """The quick scenario: no write key is cached (cache of 0 s), so while Firestore is
    stopped every request needs it, and nothing is published until it is back."""
    stack = fault_stack(STREAMS_WRITE_KEY_CACHE_SECONDS="0")
    with Destination() as destination:
        tenant, _ = webhook_tenant(stack, destination)
        ledger = Ledger()
        traffic = Traffic(Client(stack.gateway_url, ledger), tenant.write_key, "fs", 2)
        traffic.burst(5)
        assert wait_for(lambda: len(destination.delivered()) >= 5, timeout=120)
        time.sleep(2)  # quiet: nothing is written to Firestore while it is snapshotted
        stack.stop_emulator("firestore")
        traffic.start()
        time.sleep(12)
        during = dict(ledger.statuses)
        acked_during = len(ledger.acked)
        stack.start_emulator("firestore")
        time.sleep(3)
        traffic.stop()
        result = account(tenant, ledger, destination, timeout=240)

    record(
        "firestore_stopped_uncached",
        figures(
            ledger,
            result,
            answers_during_outage={str(k): v for k, v in sorted(during.items())},
            acknowledged_before_firestore_came_back=acked_during,
        ),
    )
    assert during.get(503, 0) > 0 and set(during) <= {200, 503}, during
    assert acked_during == 5, "no request is acknowledged without its write key"
    assert_accounted(result, ledger)
    assert result.recorded == {}
    assert result.delivered_once == len(ledger.sent), "every request was retried until accepted"


@pytest.mark.reliability
def test_firestore_stopped_during_ingest(fault_stack: StackFactory) -> None:
    # Ingest caches a write key for at most 10 s: the outage outlasts it, so the key is first
    # served from the cache, then looked up in the stopped Firestore.
    stack = fault_stack(STREAMS_WRITE_KEY_CACHE_SECONDS="10")
    with Destination() as destination:
        tenant, _ = webhook_tenant(stack, destination)
        cold_key = stack.another_write_key(tenant, "never used before the outage")
        ledger = Ledger()
        client = Client(stack.gateway_url, ledger)
        warm = Traffic(client, tenant.write_key, "warm")
        cold = Traffic(client, cold_key, "cold", per_second=1)
        warm.burst(10)
        assert wait_for(lambda: len(destination.delivered()) >= 10, timeout=120)
        time.sleep(3)  # quiet: nothing is written to Firestore while it is snapshotted
        warm.burst(1)  # the key is now fresh in ingest's cache
        stack.stop_emulator("firestore")
        outage_began = time.monotonic()
        warm.start()
        cold.start(senders=1)
        time.sleep(30)
        during = dict(ledger.statuses)
        acked_during = len(ledger.acked)
        stack.start_emulator("firestore")
        outage = time.monotonic() - outage_began
        time.sleep(5)
        warm.stop()
        cold.stop()
        result = account(tenant, ledger, destination, timeout=240)
        stored = stack.wait_for_rows(tenant.workspace_id, ledger.acked, timeout=240)

    record(
        "firestore_stopped",
        figures(
            ledger,
            result,
            outage_seconds=round(outage, 1),
            answers_during_outage={str(k): v for k, v in sorted(during.items())},
            acknowledged_when_firestore_came_back=acked_during,
            bigquery_rows=sum(stored.values()),
        ),
    )
    assert during.get(503, 0) > 0, "the uncached key must meet the stopped Firestore"
    assert set(during) <= {200, 503}, during
    assert_accounted(result, ledger)
    assert result.recorded == {}
    assert {m: n for m, n in stored.items() if n != 1} == {}
    assert ledger.acked <= set(stored)


def behind_ingest_outage(
    stack: FaultStack, emulator: str, name: str, prefix: str, seconds: float
) -> None:
    """Stop a store only process needs while traffic flows, start it again: ingest answers 200
    throughout, and every acknowledged event is delivered once and stored once."""
    with Destination() as destination:
        tenant, _ = webhook_tenant(stack, destination)
        ledger = Ledger()
        traffic = Traffic(Client(stack.gateway_url, ledger), tenant.write_key, prefix)
        traffic.burst(10)
        traffic.start()
        time.sleep(2)
        stack.stop_emulator(emulator)
        outage_began = time.monotonic()
        time.sleep(seconds)
        stack.start_emulator(emulator)
        outage = time.monotonic() - outage_began
        time.sleep(5)
        traffic.stop()
        result = account(tenant, ledger, destination, timeout=240)
        stored = stack.wait_for_rows(tenant.workspace_id, ledger.acked, timeout=240)

    record(
        name,
        figures(
            ledger, result, outage_seconds=round(outage, 1), bigquery_rows=sum(stored.values())
        ),
    )
    assert set(ledger.statuses) == {200}, f"ingest does not need {emulator}"
    assert_accounted(result, ledger)
    assert result.recorded == {}
    missing_rows = sorted(ledger.acked - set(stored))
    assert missing_rows == [], f"{len(missing_rows)} acknowledged events never stored"
    assert {m: n for m, n in stored.items() if n != 1} == {}, "stored more than once"


@pytest.mark.reliability
def test_bigquery_stopped_during_processing(fault_stack: StackFactory) -> None:
    behind_ingest_outage(fault_stack(), "bigquery", "bigquery_stopped", "bq", seconds=30)


@pytest.mark.reliability
def test_the_deduplication_store_stopped_during_processing(fault_stack: StackFactory) -> None:
    # Valkey (Memorystore's counterpart) stops and comes back empty, as a node without a replica
    # does: process refuses messages it cannot claim (Pub/Sub redelivers them), and the claims
    # of events already recorded are gone, which must not make anything go out twice.
    behind_ingest_outage(fault_stack(), "valkey", "dedup_store_stopped", "dedup", seconds=20)


@pytest.mark.reliability
def test_a_burst_far_above_capacity(fault_stack: StackFactory) -> None:
    stack = fault_stack()
    singles, batches, batch_size, senders = 1500, 100, 10, 24
    with Destination() as destination:
        tenant, _ = webhook_tenant(stack, destination)
        ledger = Ledger()
        client = Client(stack.gateway_url, ledger)

        def send(n: int) -> int:
            if n < singles:
                return client.single(tenant.write_key, f"burst-{n}", n)
            ids = [f"burst-{n}-{k}" for k in range(batch_size)]
            return client.batch(tenant.write_key, ids, n * batch_size)

        began = time.monotonic()
        with ThreadPoolExecutor(max_workers=senders) as pool:
            final_statuses = list(pool.map(send, range(singles + batches)))
        sent_in = time.monotonic() - began
        result = account(tenant, ledger, destination, timeout=900)

    events = singles + batches * batch_size
    record(
        "burst",
        figures(
            ledger,
            result,
            requests=singles + batches,
            senders=senders,
            seconds_to_send=round(sent_in, 1),
            events_per_second_accepted=round(events / sent_in, 1),
            seconds_to_deliver_all=round(sent_in + result.seconds_to_settle, 1),
        ),
    )
    assert set(final_statuses) == {200}, "every request is accepted in the end"
    assert_accounted(result, ledger)
    assert result.recorded == {}
