"""CIFAR-10, from its "python version": a tar.gz of pickled dicts.

Pickle can run arbitrary code, so the batches are read with an unpickler that only builds numpy
arrays, lists and strings.
"""

from __future__ import annotations

import logging
import os
import pickle
import tarfile
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..text.captions import CIFAR10
from ..utils.fsutil import cache_dir
from .base import DataError, ImageDataset
from .download import candidate_dirs, download

log = logging.getLogger(__name__)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


class _ArrayUnpickler(pickle.Unpickler):
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("builtins", "bytes")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, 3, 32, 32] and labels of one CIFAR-10 batch file."""
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
        images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (OSError, EOFError, KeyError, ValueError, TypeError, pickle.UnpicklingError) as e:
        raise DataError(f"{path}: not a CIFAR-10 batch ({e}); delete it to fetch a fresh copy") from None
    if len(images) != len(labels) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise DataError(f"{path}: {len(images)} images but {len(labels)} labels in 0..9")
    return images, labels


CIFAR10_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def find_cifar10(data_dir: Optional[str] = None, download_ok: bool = True) -> Path:
    """The folder holding CIFAR-10's batch files (`cifar-10-batches-py`), downloading and
    unpacking the archive into the cache if no candidate holds them."""
    names = [b for split in CIFAR10_BATCHES.values() for b in split]
    candidates = [c for d in candidate_dirs(data_dir, "cifar10") for c in (d, d / "cifar-10-batches-py")]
    for d in candidates:
        if all((d / n).is_file() for n in names):
            return d
    if not download_ok:
        raise DataError(f"cifar10 not found in: {', '.join(map(str, candidates))}")
    url = os.environ.get("T2I_CIFAR10_URL", CIFAR10_URL)
    dest = Path(data_dir) if data_dir else cache_dir() / "cifar10"
    archive = dest / "cifar-10-python.tar.gz"
    log.info("CIFAR-10 not found; downloading %s to %s", url, dest)

    def check(tmp: Path) -> None:
        try:
            with tarfile.open(tmp) as tar:
                members = {Path(m.name).name for m in tar.getmembers() if m.isfile()}
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DataError(f"{url}: not a valid tar.gz ({e})") from None
        if not set(names) <= members:
            raise DataError(f"{url}: the archive lacks {sorted(set(names) - members)}")
    try:
        download(url, archive, check)
    except OSError as e:
        raise DataError(f"could not download CIFAR-10 from {url} ({e}); put the unpacked "
                        "cifar-10-batches-py folder in --data-dir") from None
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    archive.unlink()
    return dest / "cifar-10-batches-py"


def load_cifar10(split: str = "train", data_dir: Optional[str] = None, subset: int = 0) -> ImageDataset:
    root = find_cifar10(data_dir)
    parts = [read_cifar_batch(root / b) for b in CIFAR10_BATCHES[split]]
    images, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    if subset:
        images, labels = images[:subset], labels[:subset]
    return ImageDataset(torch.from_numpy(images), torch.from_numpy(labels), CIFAR10)
