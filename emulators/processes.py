"""Run a command in its own process group, with a log file, a pid file and a health check."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HealthCheck = Callable[[], bool]

# Local endpoints only: never route them through an HTTP(S)_PROXY from the environment.
_LOCAL_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

STOP_TIMEOUT = 5.0
_POLL_INTERVAL = 0.05
_ZOMBIE_GRACE = 3.0


class ProcessStartError(RuntimeError):
    """A managed process exited or never became healthy."""


@dataclass
class ManagedProcess:
    """A command run as the leader of a new process group; stop() kills the whole group."""

    name: str
    command: Sequence[str]
    log_path: Path
    pid_path: Path | None = None
    env: Mapping[str, str] | None = None  # overlaid on os.environ
    cwd: Path | None = None
    health_check: HealthCheck | None = None
    _popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int | None:
        """Pid of the group leader (also the process group id), if started."""
        return self._popen.pid if self._popen else None

    def start(self) -> None:
        """Launch the command detached from our process group; output goes to log_path."""
        if self._popen is not None and self._popen.poll() is None:
            raise ProcessStartError(f"{self.name} is already running (pid {self._popen.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **(self.env or {})}
        with self.log_path.open("wb") as log:
            self._popen = subprocess.Popen(
                list(self.command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.cwd,
                # Own session = own process group: Ctrl-C in the terminal does not reach the
                # children directly, and killpg() also reaches grandchildren (gcloud's JVM).
                start_new_session=True,
            )
        if self.pid_path is not None:
            write_pid_file(self.pid_path, self._popen.pid)

    def is_running(self) -> bool:
        """True while any non-zombie process of the group is alive."""
        if self._popen is None:
            return False
        self._popen.poll()  # reap the leader so it does not linger as a zombie
        return group_alive(self._popen.pid)

    @property
    def returncode(self) -> int | None:
        """Exit code of the group leader, or None while it runs (or before start)."""
        return self._popen.poll() if self._popen else None

    def exited(self) -> bool:
        """True when the group leader we launched has exited."""
        return self._popen is not None and self._popen.poll() is not None

    def is_healthy(self) -> bool:
        """Run the health check (False when there is none)."""
        return bool(self.health_check and self.health_check())

    def wait_healthy(self, timeout: float = 60.0, interval: float = 0.2) -> float:
        """Poll the health check until it passes; return seconds waited or raise with the log."""
        started = time.monotonic()
        while True:
            if self.is_healthy():
                return time.monotonic() - started
            if self.exited():
                raise ProcessStartError(self.failure_message("exited before becoming healthy"))
            if time.monotonic() - started > timeout:
                raise ProcessStartError(self.failure_message(f"not healthy after {timeout:.0f}s"))
            time.sleep(interval)

    def failure_message(self, what: str) -> str:
        """Describe a failure, including the tail of the log file."""
        code = self.returncode
        status = f" (exit code {code})" if code is not None else ""
        return (
            f"{self.name} {what}{status}: {' '.join(self.command)}\n"
            f"--- last lines of {self.log_path} ---\n{log_tail(self.log_path)}"
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the group, wait up to timeout, then SIGKILL; remove the pid file."""
        if self._popen is not None:
            kill_group(self._popen.pid, timeout, reap=self._popen.poll)
        if self.pid_path is not None and read_pid_file(self.pid_path) == self.pid:
            self.pid_path.unlink(missing_ok=True)


def group_alive(pgid: int) -> bool:
    """True if the process group has a member that is not a zombie."""
    if not _group_exists(pgid):
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    # killpg(0) also succeeds for zombies; only live members matter.
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def kill_group(
    pgid: int, timeout: float = STOP_TIMEOUT, reap: Callable[[], object] | None = None
) -> bool:
    """Terminate a process group (SIGTERM, then SIGKILL after timeout); True if it is gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return True
        if _wait_until(lambda: not group_alive(pgid), timeout, reap):
            break
    else:
        return False
    # Orphaned members (gcloud's JVM) linger as zombies until init reaps them; wait a little so
    # a caller probing with killpg(pgid, 0) finds the group gone.
    _wait_until(lambda: not _group_exists(pgid), _ZOMBIE_GRACE, reap)
    return True


def _wait_until(
    condition: Callable[[], bool], timeout: float, reap: Callable[[], object] | None
) -> bool:
    """Poll condition until true or timeout, reaping our own child in between."""
    deadline = time.monotonic() + timeout
    while True:
        if reap is not None:
            reap()
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL)


def _group_exists(pgid: int) -> bool:
    """True while any process, zombies included, is in the group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def write_pid_file(path: Path, pid: int) -> None:
    """Write the pid atomically so a concurrent reader never sees a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(path)


def read_pid_file(path: Path) -> int | None:
    """The pid recorded in path, or None."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def recorded_group_alive(pid_path: Path) -> int | None:
    """The recorded pid if it still leads a live process group of its own, else None."""
    pid = read_pid_file(pid_path)
    if pid is None:
        return None
    try:
        if os.getpgid(pid) != pid:
            return None  # the pid was reused by a process that is not our group leader
    except ProcessLookupError:
        pass  # leader gone; orphaned members of its group may survive
    return pid if group_alive(pid) else None


def stop_pid_file(pid_path: Path, timeout: float = STOP_TIMEOUT) -> bool:
    """Kill the group recorded in pid_path (if alive) and remove the file; True if it was alive."""
    pid = recorded_group_alive(pid_path)
    if pid is not None:
        kill_group(pid, timeout)
    pid_path.unlink(missing_ok=True)
    return pid is not None


def log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file (empty if unreadable)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16_384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, body: str | None = None, timeout: float = 2.0) -> bool:
    """True if GET url answers 200 (and, when given, exactly this body after stripping)."""
    try:
        with _LOCAL_OPENER.open(url, timeout=timeout) as resp:
            if resp.status != 200:
                return False
            return body is None or resp.read().decode("utf-8", "replace").strip() == body
    except (urllib.error.URLError, OSError, ValueError):
        return False
