"""One writer per run directory: ``RUN_DIR/.lock``, held by the main process for the whole run.

Two ``gan train`` (or two ``--resume``) into one run directory would both train and overwrite
each other's checkpoints and log lines. The main process therefore holds an exclusive lock on
``RUN_DIR/.lock`` from before the run is built until it ends; a second start is refused with one
line naming the holder (pid, host, start time), which the lock file records.

Why ``fcntl.flock`` on a file, not a file created with ``O_EXCL``: the kernel drops a flock the
moment its holder dies, even by SIGKILL or a power cut, so a lock can never be left stale and two
starters can never both take over a stale one (the race an ``O_EXCL`` file has between "its pid
is dead" and "remove it"). The pid and host written into the file only name the holder. A lock
file whose lock is free but whose text names a process is what a killed run leaves: it is taken
over with a warning. The file is removed when the run ends; a starter that opened the file just
before it was removed notices (the path no longer names the file it locked) and tries again.
Where the file system has no locks (``flock`` fails with another error than "held"), the run goes
on with a warning that the directory is unprotected.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from gancore._errors import ConfigError

__all__ = ["LOCK_FILE", "RunLock", "hold_run_dir"]

LOCK_FILE = ".lock"


class RunLock:
    """The lock on one run directory; :meth:`acquire` takes it (creating the directory), and
    :meth:`release` gives it back (removing the directory again if it created it and left it
    empty, so a run that fails to build leaves nothing)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None
        self._created = False

    def acquire(self) -> str | None:
        """Take the lock; ``None`` once held, else the one-line reason it is refused."""
        if self._fd is not None:
            return None
        self._created = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(10):  # each retry follows a holder that removed the file at its end
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_holder(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    return self._refusal(holder)
                print(
                    f"warning: cannot lock {str(self.path)!r} ({exc.strerror}); nothing stops "
                    "a second run from writing into this run directory at the same time",
                    file=sys.stderr,
                )
                return None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # locked a file its holder removed as it ended: take the new one
                os.close(fd)
                continue
            previous = _read_holder(fd)
            if previous:
                print(
                    f"warning: taking over the lock of {str(self.run_dir)!r} from "
                    f"{_describe(previous)}, which is no longer running (a run that was killed)",
                    file=sys.stderr,
                )
            mine = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(mine) + "\n").encode(), 0)
            os.fsync(fd)
            self._fd = fd
            return None
        return self._refusal({})

    def release(self) -> None:
        """Give the lock back and remove the lock file (and a directory this start created that
        holds nothing else)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # before unlocking: a starter waiting on this file retries
        # Unlock explicitly: a forked data-loader worker shares the lock until it exits.
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
        if self._created:
            with contextlib.suppress(OSError):
                self.run_dir.rmdir()  # only if empty

    def _refusal(self, holder: dict[str, Any]) -> str:
        return (
            f"run directory {str(self.run_dir)!r} is in use by {_describe(holder)} (lock file "
            f"{str(self.path)!r}); wait for that run to end or stop it, or train into another "
            "directory"
        )


def hold_run_dir(lock: RunLock, accelerator: Any) -> None:
    """The main process takes ``lock``; if it is refused, every process raises the same
    :class:`ConfigError` (the answer is broadcast, so no process goes on alone)."""
    refusal = lock.acquire() if accelerator.is_main_process else None
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        refusal = broadcast_object_list([refusal], from_process=0)[0]
    if refusal is not None:
        raise ConfigError([refusal])


def _read_holder(fd: int) -> dict[str, Any]:
    """What the lock file says about its holder (``{}`` when empty or unreadable)."""
    try:
        text = os.pread(fd, 4096, 0).decode(errors="replace")
        holder = json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another process"
    text = f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"
    if holder.get("started"):
        text += f", started {holder['started']}"
    return text
