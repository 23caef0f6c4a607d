"""`make dev`'s stand-in for Cloud Scheduler's warehouse job."""

from __future__ import annotations

import threading

from emulators.dev import WarehouseScheduler


def test_syncs_at_start_then_every_interval_and_a_failed_round_does_not_stop_it() -> None:
    rounds: list[int] = []
    third = threading.Event()

    def sync_all() -> dict[str, list[str]]:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("BigQuery emulator restarting")
        if len(rounds) >= 3:
            third.set()
        return {"synced": ["ws"], "failed": []}

    scheduler = WarehouseScheduler(sync_all, interval=0.01)
    scheduler.start()
    assert third.wait(5), rounds
    scheduler.stop()
    stopped_at = len(rounds)
    assert not scheduler._thread.is_alive()
    assert len(rounds) == stopped_at


def test_waits_the_interval_between_rounds() -> None:
    rounds: list[int] = []
    scheduler = WarehouseScheduler(lambda: rounds.append(1), interval=60)
    scheduler.start()
    threading.Event().wait(0.2)
    scheduler.stop()
    assert rounds == [1]
