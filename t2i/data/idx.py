"""Fashion-MNIST and MNIST: four gzipped IDX files each (LeCun's format).

We look for them in, in order: an explicit directory, `$T2I_DATA`, the user cache directory, and
(Fashion-MNIST) Debian's `dataset-fashion-mnist` package; if none has them we download from the
dataset's mirror into the cache. Fashion-MNIST files are checked against the SHA-256 of their
*decompressed* bytes: Debian recompresses the archives (their .gz checksums differ from upstream)
but the data inside is identical, and a truncated or corrupt file must be a clear error naming
it, never a silently wrong dataset. MNIST files are checked for their exact size and layout.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import struct
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..text.captions import FASHION_MNIST, MNIST
from ..utils.fsutil import cache_dir
from .base import DataError, ImageDataset
from .download import candidate_dirs, download

log = logging.getLogger(__name__)

FASHION_MNIST_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

# SHA-256 and size of each file's decompressed bytes.
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": ("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47040016),
    "train-labels-idx1-ubyte.gz": ("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60008),
    "t10k-images-idx3-ubyte.gz": ("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7840016),
    "t10k-labels-idx1-ubyte.gz": ("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10008),
}
# MNIST: sizes only (the files are checked for their exact IDX layout and length).
MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_FILES = {name: (None, size) for name, (_, size) in FASHION_MNIST_FILES.items()}

CLASSES = {"fashion-mnist": FASHION_MNIST, "mnist": MNIST}


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes (LeCun's MNIST format): magic 0x0000 + dtype byte + ndim byte, then one
    big-endian uint32 per dimension, then the data."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{name}: not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{name}: IDX header promises {expected} bytes for shape {shape}, "
                        f"file has {len(raw)} (truncated or corrupt)")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: Path, sha256: Optional[str] = None, size: Optional[int] = None) -> np.ndarray:
    """Read a (possibly gzipped) IDX file, verifying the decompressed bytes' SHA-256 (or, when
    no checksum is known, their size) if given."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot decompress ({e}); the file is truncated or corrupt, "
                        "delete it to fetch a fresh copy") from None
    if sha256 is not None and hashlib.sha256(raw).hexdigest() != sha256:
        raise DataError(f"{path}: checksum mismatch; the file is corrupt or not the dataset it "
                        "should be, delete it to fetch a fresh copy")
    if size is not None and len(raw) != size:
        raise DataError(f"{path}: {len(raw)} bytes, expected {size}; delete it to fetch a fresh copy")
    return parse_idx(raw, str(path))


def _idx_files(name: str) -> tuple[dict, str]:
    """The four files of an IDX dataset, each with (SHA-256 or None, decompressed size), and
    the mirror to download them from."""
    if name == "fashion-mnist":
        return FASHION_MNIST_FILES, os.environ.get("T2I_FASHION_MNIST_MIRROR", FASHION_MNIST_MIRROR)
    return MNIST_FILES, os.environ.get("T2I_MNIST_MIRROR", MNIST_MIRROR)


def find_idx_dataset(name: str, data_dir: Optional[str] = None, download_ok: bool = True) -> Path:
    """The first directory holding all four files of `name`, downloading into the cache if
    none does."""
    files, mirror = _idx_files(name)
    if data_dir and Path(data_dir).is_dir():
        missing = [f for f in files if not (Path(data_dir) / f).is_file()]
        if missing and len(missing) < len(files):  # some there: the user meant this folder
            raise DataError(f"{data_dir} holds only some of {name}'s files: {', '.join(missing)} "
                            "missing")
    for d in candidate_dirs(data_dir, name):
        if all((d / f).is_file() for f in files):
            return d
    searched = ", ".join(str(d) for d in candidate_dirs(data_dir, name))
    if not download_ok:
        raise DataError(f"{name} not found in: {searched}")
    dest = Path(data_dir) if data_dir else cache_dir() / name
    log.info("%s not found in %s; downloading from %s to %s", name, searched, mirror, dest)
    for file, (sha, size) in files.items():
        if not (dest / file).is_file():
            source = mirror.rstrip("/") + "/" + file
            try:
                download(source, dest / file, lambda tmp: _verify_idx(tmp, sha, size, source))
            except OSError as e:
                hint = "install Debian's dataset-fashion-mnist or " if name == "fashion-mnist" else ""
                raise DataError(f"could not download {file} from {mirror} ({e}); {hint}put the "
                                "four .gz files in --data-dir") from None
    return dest


def find_fashion_mnist(data_dir: Optional[str] = None, download_ok: bool = True) -> Path:
    return find_idx_dataset("fashion-mnist", data_dir, download_ok)


def _verify_idx(path: Path, sha256: Optional[str], size: int, source: str) -> None:
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{source}: downloaded file is not a valid gzip ({e})") from None
    if (sha256 is not None and hashlib.sha256(raw).hexdigest() != sha256) or len(raw) != size:
        raise DataError(f"{source}: downloaded file fails its checksum")


def load_idx_dataset(name: str, split: str = "train", data_dir: Optional[str] = None,
                     subset: int = 0) -> ImageDataset:
    root = find_idx_dataset(name, data_dir)
    files, _ = _idx_files(name)
    prefix = "train" if split == "train" else "t10k"
    images_name, labels_name = f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"
    images = read_idx(root / images_name, *files[images_name])
    labels = read_idx(root / labels_name, *files[labels_name])
    if subset:
        images, labels = images[:subset], labels[:subset]
    return ImageDataset(torch.from_numpy(images.copy()).unsqueeze(1),
                        torch.from_numpy(labels.astype(np.int64)), CLASSES[name])


def load_fashion_mnist(split: str = "train", data_dir: Optional[str] = None,
                       subset: int = 0) -> ImageDataset:
    return load_idx_dataset("fashion-mnist", split, data_dir, subset)
