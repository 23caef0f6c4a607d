"""CLI: python -m emulators start|stop|status|install-bq."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

from emulators.stack import (
    EmulatorStartError,
    default_state_dir,
    ensure_bq_venv,
    stack_status,
    start_stack,
    stop_recorded,
)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """Turn SIGINT/SIGTERM into one clean shutdown path."""
    raise KeyboardInterrupt


def cmd_start() -> int:
    """Start (or reuse) all three, stay in the foreground, stop ours on Ctrl-C/SIGTERM."""
    # Explicit for SIGINT too: a shell starts background jobs with SIGINT ignored.
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        stack = start_stack()  # on any failure it has already stopped what it launched
    except EmulatorStartError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    try:
        for name, handle in stack.handles.items():
            how = f"started in {handle.startup_seconds:.1f}s" if handle.started_by_us else "reused"
            print(f"{name:10} {how}")
        for key, value in stack.env().items():
            print(f"export {key}={value}")
        print(f"Logs in {default_state_dir() / 'logs'}. Ctrl-C stops what was started.", flush=True)
        while True:
            for handle in stack.handles.values():
                if handle.process is not None and handle.process.exited():
                    print(handle.process.failure_message("exited"), file=sys.stderr)
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        # Ignore a second Ctrl-C so the process groups are always torn down.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()


def cmd_stop() -> int:
    """Kill every emulator recorded in the pid files."""
    for name, was_running in stop_recorded().items():
        print(f"{name:10} {'stopped' if was_running else 'not running'}")
    return 0


def cmd_status() -> int:
    """Print which emulators are healthy; exit 1 unless all are."""
    status = stack_status()
    for name, healthy in status.items():
        print(f"{name:10} {'healthy' if healthy else 'down'}")
    return 0 if all(status.values()) else 1


def cmd_install_bq() -> int:
    """Create .venv-bq from emulators/requirements-bq.txt if missing or outdated."""
    print(ensure_bq_venv())
    return 0


COMMANDS = {
    "start": cmd_start,
    "stop": cmd_stop,
    "status": cmd_status,
    "install-bq": cmd_install_bq,
}


def main(argv: list[str] | None = None) -> int:
    """Dispatch one subcommand."""
    parser = argparse.ArgumentParser(prog="python -m emulators", description=__doc__)
    parser.add_argument("command", choices=COMMANDS)
    args = parser.parse_args(argv)
    return COMMANDS[args.command]()


if __name__ == "__main__":
    sys.exit(main())
