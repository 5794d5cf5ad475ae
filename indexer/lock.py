"""One build at a time per index: an exclusive `fcntl.flock` on INDEX/.build.lock, held for the whole build.

The kernel releases the lock when its holder dies, `kill -9` included, so a dead build never blocks the next
one. The holder writes its pid into the file, so a second build can say whom it is waiting for.
"""
from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".build.lock"


class BuildLocked(RuntimeError):
    """Another build holds the index (raised only when not waiting)."""


def holder_pid(root: Path) -> int | None:
    try:
        text = (root / LOCK_NAME).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def is_locked(root: Path) -> bool:
    """Whether a build runs on this index now (a probe: takes and drops the lock when it is free)."""
    if not (root / LOCK_NAME).exists():
        return False
    fd = os.open(root / LOCK_NAME, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@contextmanager
def build_lock(root: Path, wait: bool = True, on_wait: Callable[[int | None], None] | None = None) -> Iterator[None]:
    """Hold the index's build lock for the block. Busy: wait (calling `on_wait(holder pid)` once first), or,
    with wait=False, raise BuildLocked."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = holder_pid(root)
            if not wait:
                raise BuildLocked(f"another build (pid {holder or '?'}) is running on {root}") from None
            if on_wait is not None:
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
