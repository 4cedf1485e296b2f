"""Files and folders that are never seen half-written, and where caches live."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def write_text_atomic(path: Path, text: str) -> None:
    """Write `path` through a temporary file renamed over it: readers see the old or the new text."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_directory(path: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `path` to fill. If the block completes, the folder
    replaces `path` (an old one is first renamed aside, then deleted); if it fails, the folder
    is deleted. Readers never see a half-written checkpoint or cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.part-"))
    try:
        yield tmp
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
