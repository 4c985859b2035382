"""One trainer per run directory: an exclusive lock on ``RUN_DIR/.lock`` while training.

    with lock.hold("runs/copy") as held:        # RunDirBusy if another trainer has it
        if held.took_over:
            print(held.took_over)               # "took over the lock of process 1234 (...)"
        ...train...

The lock is the operating system's (``fcntl.flock``), so it goes with its holder: a process
that ends, however it ends (SIGKILL included), releases it, and the next trainer takes the
directory over. While held, the file names its holder (pid, host, start time, command line, as
JSON) so that a refused trainer can say who has the directory; a holder that lets go clears it,
so a record found by the next holder is one left by a process that was killed.

``flock`` locks belong to an open file, not to a process: a second ``hold`` of the same
directory in the same process is refused like one from another process, and a lock released
is free again for the next run. Linux and macOS only (``fcntl``); on NFS, Linux emulates
``flock`` with POSIX locks, which a process does not hold against itself, so there only other
processes are refused.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Any

# Hidden, so that listings of a run directory's files see only the run's own.
LOCK = ".lock"


class RunDirBusy(OSError):
    """Another trainer holds the run directory; ``holder`` is its record (None if unread)."""

    def __init__(self, run_dir: str | os.PathLike, holder: dict[str, Any] | None):
        self.run_dir, self.holder = Path(run_dir), holder
        host = socket.gethostname()
        if holder is None:
            message = (f"{run_dir} is being trained by another process; wait for it to end or "
                       "stop it, then try again")
        elif holder.get("pid") == os.getpid() and holder.get("host") == host:
            message = (f"{run_dir} is being trained by this process already ({describe(holder)})"
                       "; a run directory has one trainer: let that run end first")
        else:
            pid = holder.get("pid")
            where = "" if holder.get("host") == host else f" on {holder.get('host')}"
            message = (f"{run_dir} is being trained by process {pid} ({describe(holder)}); "
                       f"wait for it to end or stop it (kill -INT {pid}{where}), then try again")
        super().__init__(message)
        self.errno = errno.EBUSY

    def __reduce__(self):  # pickled whole, for errors that cross processes (sweeps)
        return type(self), (self.run_dir, self.holder)


class RunLock:
    """The lock on one run directory; ``acquire``/``release``, or use it in a ``with``.

    ``took_over`` (after ``acquire``) says whose lock was taken over, if the last holder was
    killed before it could release it; None otherwise. ``previous`` is that holder's record.
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK
        self.previous: dict[str, Any] | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    @property
    def took_over(self) -> str | None:
        if self.previous is None:
            return None
        return (f"took over the lock of process {self.previous.get('pid')} "
                f"({describe(self.previous)}), which ended without releasing it")

    def acquire(self) -> RunLock:
        """Take the lock, or raise RunDirBusy at once, having changed nothing in the directory.

        Creates the directory if needed. The file is opened without truncation and written
        only once the lock is ours: a refused trainer must not clear its holder's record.
        """
        if self._fd is not None:
            raise RuntimeError(f"the lock on {self.run_dir} is held by this RunLock already")
        self.previous = None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunDirBusy(self.run_dir, _holder(fd)) from None
            self.previous = _read(fd)
            record = dict(pid=os.getpid(), host=socket.gethostname(),
                          started=time.strftime("%Y-%m-%d %H:%M:%S"), command=_command())
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        except BaseException:
            os.close(fd)  # closing releases a lock taken above
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        """Clear the record and let go. The file stays: removing it would let a trainer that
        opened it just before the removal lock the removed file while a third locks a new
        one, two holders at once. Clearing it first, while still held, is race-free."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # and with it the lock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:  # a lock dropped unreleased must not outlive its object
        if self._fd is not None:
            os.close(self._fd)


def hold(run_dir: str | os.PathLike) -> RunLock:
    """The lock on ``run_dir``, for ``with hold(run_dir) as held:``; see ``RunLock``."""
    return RunLock(run_dir)


def describe(record: dict[str, Any]) -> str:
    """A holder in words: "diffmem train copy, started 2026-12-07 05:51:02 on host h"."""
    command = shlex.join(str(a) for a in record.get("command") or ["?"])
    if len(command) > 60:
        command = command[:57] + "..."
    return f"{command}, started {record.get('started', '?')} on host {record.get('host', '?')}"


def _command() -> list[str]:
    """This process's command line as a user typed it: ``diffmem train ...``, not the path of
    the script; ``python -m diffmem ...`` for a package run as a module."""
    argv = list(sys.argv) or [""]
    program = [os.path.basename(argv[0])]
    if program[0] == "__main__.py":
        program = ["python", "-m", os.path.basename(os.path.dirname(argv[0]))]
    elif argv[0] in ("", "-"):
        program = ["python"]
    elif argv[0] == "-c":
        program = ["python", "-c"]
    return [*program, *argv[1:]]


def _read(fd: int) -> dict[str, Any] | None:
    """The record in the lock file, or None if it is empty or not (yet) whole."""
    try:
        record = json.loads(os.pread(fd, 1 << 16, 0))
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _holder(fd: int) -> dict[str, Any] | None:
    """The holder's record, read without changing the file. A holder writes it just after
    taking the lock, so an empty file is read again for a moment before giving up."""
    for _ in range(20):
        record = _read(fd)
        if record is not None:
            return record
        time.sleep(0.005)
    return None
