"""Where dataset files are looked for, and fetching them atomically when none is found."""

from __future__ import annotations

import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Optional

from tqdm.auto import tqdm

from ..utils.fsutil import cache_dir

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist


def candidate_dirs(data_dir: Optional[str], name: str = "fashion-mnist") -> list[Path]:
    dirs = []
    if data_dir:
        dirs.append(Path(data_dir))
    if os.environ.get("T2I_DATA"):
        dirs.append(Path(os.environ["T2I_DATA"]))
    dirs.append(cache_dir() / name)
    if name == "fashion-mnist":
        dirs.append(DEBIAN_DIR)
    return dirs


def download(url: str, dest: Path, check, progress: bool = True) -> None:
    """Fetch `url` to `dest` atomically; `check(tmp_path)` must pass before it lands."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                      disable=not progress) as bar:
                while chunk := resp.read(1 << 16):
                    out.write(chunk)
                    bar.update(len(chunk))
        check(Path(tmp))
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
