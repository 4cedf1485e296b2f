"""Files and folders that are never seen half-written, one writer per folder, and where
caches live."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one writer per folder is then the user's care
    fcntl = None

LOCK = ".lock"


class InUse(OSError):
    """Another process holds the folder's lock."""


class Lock:
    """An exclusive lock on `folder/name`, held until `release()` (or the process ends).

    An fcntl lock, not a file whose existence is the lock: the kernel drops it when its process
    ends in any way (kill -9 included), so a crashed run never leaves a stale lock behind; the
    file only says who holds it (pid, host, command, since when), for the message the next
    process gives. `wait`: block until the holder is done, else raise `InUse` at once."""

    def __init__(self, folder: Path, name: str = LOCK, wait: bool = False, what: str = "this folder"):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / name
        self.fd: Optional[int] = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:
            return
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self.holder()
            if not wait:
                os.close(self.fd)
                self.fd = None
                raise InUse(errno.EBUSY, f"{what} {folder} is in use by {holder}: wait for it to "
                                         "finish (or stop it), or choose another folder") from None
            sys.stderr.write(f"waiting for {holder}, which is writing {what} {folder}\n")
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        os.ftruncate(self.fd, 0)
        os.write(self.fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                      "command": " ".join(sys.argv),
                                      "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())

    def holder(self) -> str:
        """Who holds the lock, as its file says."""
        try:
            info = json.loads(self.path.read_text())
            return (f"process {info['pid']} on {info['host']} (since {info['since']}: "
                    f"{info['command']})")
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the file drops the lock
            self.fd = None

    def __enter__(self) -> "Lock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def no_space(e: OSError, what: str, kept: str = "") -> OSError:
    """`e` as one clear line where the disk is full (ENOSPC, EDQUOT), else `e` itself."""
    if e.errno not in (errno.ENOSPC, errno.EDQUOT):
        return e
    return OSError(e.errno, f"no space left on the device writing {what}; nothing half-written "
                            f"was kept{kept}. Free some space and run again")


def write_text_atomic(path: Path, text: str) -> None:
    """Write `path` through a temporary file renamed over it: readers see the old or the new text."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise no_space(e, str(path)) from None


@contextlib.contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `path` to fill. If the block completes, the folder
    replaces `path` (an old one is first renamed aside, then deleted); if it fails, the folder
    is deleted. Readers never see a half-written checkpoint or cache; a full disk is one clear
    OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.part-"))
    try:
        try:
            yield tmp
        except OSError as e:
            raise no_space(e, str(path)) from None
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old-"))
            os.replace(path, old / path.name)
            shutil.rmtree(old)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def cache_dir() -> Path:
    """The user cache directory of t2i: $XDG_CACHE_HOME/t2i, else ~/.cache/t2i."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "t2i"


def cache_root(data_config) -> Path:
    """The folder of a run's caches (images, latents, text embeddings): `data.cache_dir`, else
    the user cache directory."""
    return Path(data_config.cache_dir) if data_config.cache_dir else cache_dir()
