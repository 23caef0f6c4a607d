"""What the local stack tells the functions (emulators/stack.py `EmulatorStack.env`): where each
emulator is, and which deduplication store they use."""

from __future__ import annotations

import pytest

from emulators.stack import EmulatorPorts, EmulatorStack


def stack() -> EmulatorStack:
    return EmulatorStack(EmulatorPorts(valkey=16389), "env-test", {})


def test_the_functions_claim_in_the_stacks_valkey_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STREAMS_DEDUP_STORE", raising=False)

    env = stack().env()

    assert env["STREAMS_VALKEY_URL"] == "valkey://127.0.0.1:16389/0"
    assert env["STREAMS_PROJECT_ID"] == env["GOOGLE_CLOUD_PROJECT"] == "env-test"


def test_a_firestore_dedup_store_leaves_valkey_out(monkeypatch: pytest.MonkeyPatch) -> None:
    # As a deployment with `dedup_store.kind = "firestore"`: the functions' Settings then keep
    # claims in Firestore (shared/bootstrap.py `claims`).
    monkeypatch.setenv("STREAMS_DEDUP_STORE", "firestore")

    env = stack().env()

    assert "STREAMS_VALKEY_URL" not in env
    assert env["FIRESTORE_EMULATOR_HOST"] == "127.0.0.1:8086"
