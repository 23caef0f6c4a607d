"""Local Google Cloud emulators (Pub/Sub, Firestore, BigQuery) and process helpers."""

from emulators.processes import ManagedProcess, ProcessStartError, kill_group
from emulators.stack import (
    EmulatorHandle,
    EmulatorPorts,
    EmulatorStack,
    EmulatorStartError,
    ensure_bq_venv,
    reset_firestore,
    stack_status,
    start_stack,
    stop_recorded,
)

__all__ = [
    "EmulatorHandle",
    "EmulatorPorts",
    "EmulatorStack",
    "EmulatorStartError",
    "ManagedProcess",
    "ProcessStartError",
    "ensure_bq_venv",
    "kill_group",
    "reset_firestore",
    "stack_status",
    "start_stack",
    "stop_recorded",
]
