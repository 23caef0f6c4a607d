"""bench/ingest.py's comparisons: medians of per-round ratios, on the server's CPU."""

from __future__ import annotations

from typing import Any

from bench.ingest import comparisons


def scenario(rps: float, server_cores: float, emulator_cores: float = 0.0) -> dict[str, Any]:
    per_cpu = {
        "server": round(rps / server_cores, 1),
        "server_and_emulator": round(rps / (server_cores + emulator_cores), 1),
    }
    return {
        "requests_per_second": rps,
        "events_per_second": rps,
        "cpu_ms_per_request": {
            "server": server_cores / rps * 1000,
            "pubsub_emulator": emulator_cores / rps * 1000,
        },
        "requests_per_cpu_second": per_cpu,
    }


def one_round(track_cores: float) -> dict[str, dict[str, Any]]:
    return {
        "noop_track": scenario(6000, 1.0),
        "track_wsgi": scenario(1000, 1.0, 0.1),
        "track": scenario(2000, track_cores, 0.1),
        "noop_batch": scenario(1200, 1.0),
        "batch_wsgi": scenario(140, 1.0),
        "batch": scenario(170, 1.0),
        "noop_wsgi_track": scenario(1800, 1.0),
        "noop_wsgi_batch": scenario(800, 1.0),
    }


def test_the_ratios_are_the_medians_of_the_rounds_and_the_targets_follow() -> None:
    # The new entry point at 2000/1.25, 2000/0.8 and 2000/1.0 requests per CPU-second.
    report = comparisons([one_round(1.25), one_round(0.8), one_round(1.0)])
    track = report["versus_wsgi"]["track"]["requests_per_cpu_second"]
    assert track["rounds"] == [1.6, 2.5, 2.0] and track["median"] == 2.0
    assert report["versus_wsgi"]["batch"]["requests_per_cpu_second"]["median"] == 1.214
    assert report["targets"]["track_requests_per_cpu_second_vs_wsgi"]["met"] is True
    assert report["targets"]["batch_requests_per_cpu_second_vs_wsgi"]["met"] is False
    # The summary of a scenario is its round of median CPU per request.
    assert report["scenarios"]["track"]["requests_per_cpu_second"]["server"] == 2000.0
    assert report["noop_asgi_vs_wsgi"]["track"]["median"] == round(6000 / 1800, 3)
