"""Datasets.

Every dataset is an `ImageDataset`: uint8 images, and for each example either a class label
(Fashion-MNIST, MNIST, CIFAR-10; captions come from the class, see captions.py) or its own
captions (a captioned folder or a Hugging Face dataset, see captioned.py).

Fashion-MNIST and MNIST come as four gzipped IDX files. We look for them in, in order: an
explicit directory, `$T2I_DATA`, the user cache directory, and (Fashion-MNIST) Debian's
`dataset-fashion-mnist` package; if none has them we download from the dataset's mirror into the
cache. Fashion-MNIST files are checked against the SHA-256 of their *decompressed* bytes: Debian
recompresses the archives (their .gz checksums differ from upstream) but the data inside is
identical, and a truncated or corrupt file must be a clear error naming it, never a silently
wrong dataset. MNIST and CIFAR-10 files are checked for their exact size and layout.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import logging
import os
import pickle
import struct
import tarfile
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .captions import CIFAR10, FASHION_MNIST, MNIST, Classes
from .checkpoint import atomic_directory

log = logging.getLogger(__name__)

FASHION_MNIST_MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

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

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

# ----------------------------------------------------------------------------- IDX files

class DataError(RuntimeError):
    """A dataset file is missing, truncated or corrupt."""


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


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "t2i"


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
    from tqdm.auto import tqdm

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


# ----------------------------------------------------------------------------- CIFAR-10
#
# CIFAR-10's "python version" is a tar.gz of pickled dicts. Pickle can run arbitrary code, so
# the batches are read with an unpickler that only builds numpy arrays, lists and strings.

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


# ----------------------------------------------------------------------------- datasets

@dataclass
class ImageDataset:
    """Images as uint8 [N, C, H, W]; for a labelled dataset, integer labels and the `classes`
    they name, for a captioned one, the captions of each image (labels are then -1)."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: Optional[Classes] = None
    captions: Optional[list[list[str]]] = None

    def __post_init__(self):
        # Each class's training captions, looked up per example when batches are drawn.
        self._class_captions = self.classes.training_captions() if self.classes else None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images scaled to [-1, 1] and their labels."""
        return self.images[idx].float().div_(127.5).sub_(1.0), self.labels[idx]

    def captions_of(self, idx: torch.Tensor, u: torch.Tensor) -> list[str]:
        """One caption per example of `idx`, the choice among its captions made by the uniform
        numbers `u` (drawn by the caller, so that every DDP rank draws the same ones)."""
        if self.captions is not None:
            options = [self.captions[int(i)] for i in idx]
        else:
            options = [self._class_captions[int(y)] for y in self.labels[np.asarray(idx)]]
        return [o[min(int(x * len(o)), len(o) - 1)] for o, x in zip(options, u.tolist())]

    def sample_prompts(self, k: int = 10) -> list[str]:
        """Prompts for sample grids during training: the class names, else the first `k`
        distinct captions."""
        if self.classes is not None:
            return list(self.classes.names)
        return list(dict.fromkeys(c[0] for c in self.captions[:10 * k]))[:k]


LABELLED = {"fashion-mnist": FASHION_MNIST, "mnist": MNIST, "cifar10": CIFAR10}
DATASETS = [*LABELLED, "folder", "hf"]


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
                        torch.from_numpy(labels.astype(np.int64)), LABELLED[name])


def load_fashion_mnist(split: str = "train", data_dir: Optional[str] = None,
                       subset: int = 0) -> ImageDataset:
    return load_idx_dataset("fashion-mnist", split, data_dir, subset)


def load_cifar10(split: str = "train", data_dir: Optional[str] = None, subset: int = 0) -> ImageDataset:
    root = find_cifar10(data_dir)
    parts = [read_cifar_batch(root / b) for b in CIFAR10_BATCHES[split]]
    images, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    if subset:
        images, labels = images[:subset], labels[:subset]
    return ImageDataset(torch.from_numpy(images), torch.from_numpy(labels), CIFAR10)


def load_dataset(cfg, split: str = "train", progress: bool = True) -> ImageDataset:
    """The dataset named by a `DataConfig` (`progress`: a bar while an image cache is built)."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    subset = cfg.subset if split == "train" else 0
    if cfg.dataset in ("fashion-mnist", "mnist"):
        return load_idx_dataset(cfg.dataset, split, cfg.data_dir, subset)
    if cfg.dataset == "cifar10":
        return load_cifar10(split, cfg.data_dir, subset)
    if cfg.dataset in ("folder", "hf"):
        from .captioned import open_image_cache

        if split != "train":
            raise DataError(f"the {cfg.dataset} dataset has no test split")
        return open_image_cache(cfg, progress=progress)
    raise ValueError(f"unknown dataset {cfg.dataset!r}; one of {DATASETS}")


def dataset_info(cfg) -> dict:
    """What a model needs to know of its dataset without loading it: the image shape and, for
    a labelled dataset, its classes (else None)."""
    if cfg.dataset in ("fashion-mnist", "mnist"):
        return {"shape": (1, 28, 28), "classes": LABELLED[cfg.dataset]}
    if cfg.dataset == "cifar10":
        return {"shape": (3, 32, 32), "classes": CIFAR10}
    if cfg.dataset in ("folder", "hf"):
        return {"shape": (cfg.channels, cfg.image_size, cfg.image_size), "classes": None}
    raise ValueError(f"unknown dataset {cfg.dataset!r}; one of {DATASETS}")


class EpochSampler:
    """Indices in a fresh random permutation each epoch. Its state (permutation and cursor) is
    checkpointed, so a resumed run sees the data in the same order as an uninterrupted one."""

    def __init__(self, n: int):
        self.n = n
        self.perm, self.cursor = torch.randperm(n), 0

    def load(self, perm: torch.Tensor, cursor: int) -> None:
        self.perm, self.cursor = perm, cursor

    def next(self, k: int) -> torch.Tensor:
        out = []
        while k > 0:
            if self.cursor >= len(self.perm):
                self.perm, self.cursor = torch.randperm(self.n), 0
            take = self.perm[self.cursor:self.cursor + k]
            self.cursor += len(take)
            k -= len(take)
            out.append(take)
        return torch.cat(out)


# ----------------------------------------------------------------------------- latent caches
#
# A latent cache is a directory holding latents.npy (float32 [N, c, h, w]), labels.npy and
# manifest.json. Training memory-maps the arrays, so a dataset larger than RAM trains the same
# way. The manifest records everything the latents depend on — the data (its checksum), the VAE
# (name, weights checksum, scale, resolution) and the t2i version — and a cache whose manifest
# differs from what a run expects is refused, never silently used. A cache is built in a
# temporary directory and renamed into place once complete, so an interrupted `t2i prepare`
# leaves nothing that looks like a cache.

CACHE_FORMAT = 1


class LatentDataset(ImageDataset):
    """Memory-mapped latents (`images`: float32 [N, c, h, w], already scaled) with their labels;
    `batch` reads only the rows asked for."""

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = idx.numpy()
        return torch.from_numpy(np.ascontiguousarray(self.images[rows])), torch.from_numpy(self.labels[rows])


def _sha256_arrays(arrays, rows: int = 4096) -> str:
    """SHA-256 of tensors or (memory-mapped) arrays, read a block of rows at a time."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.atleast_1d(a.detach().cpu().numpy()) if isinstance(a, torch.Tensor) else a
        for i in range(0, max(len(a), 1), rows):
            h.update(np.ascontiguousarray(a[i:i + rows]).tobytes())
    return h.hexdigest()


def cache_manifest(config, codec, data: ImageDataset) -> dict:
    """What a latent cache of `data` through `codec` must record to be reused safely."""
    from . import __version__

    return {"format": CACHE_FORMAT, "t2i_version": __version__,
            "dataset": config.data.dataset, "split": "train", "subset": config.data.subset,
            "count": len(data), "data_sha256": _sha256_arrays([data.images, data.labels]),
            "captions_sha256": hashlib.sha256(json.dumps(data.captions).encode()).hexdigest(),
            "vae": codec.name, "vae_sha256": _sha256_arrays(codec.vae.state_dict().values()),
            "scale": codec.scale, "resolution": codec.resolution,
            "latent_shape": list(codec.latent_shape), "dtype": "float32",
            # Text embeddings are cached apart (text.py), keyed by encoder and caption set, so
            # one latent cache serves every text encoder.
            }


def cache_root(data_config) -> Path:
    """The folder of a run's caches (images, latents, text embeddings): `data.cache_dir`, else
    the user cache directory."""
    return Path(data_config.cache_dir) if data_config.cache_dir else cache_dir()


def latent_cache_path(config) -> Path:
    """Where the cache of a config lives: `data.cache_dir`/latents, else a folder of the user
    cache named by the dataset and the VAE settings (so different VAEs never share a folder)."""
    if config.data.cache_dir:
        return Path(config.data.cache_dir) / "latents"
    vc = config.vae
    data = {k: v for k, v in dataclasses.asdict(config.data).items() if k != "cache_dir"}
    key = json.dumps([data, vc.resolved_name(), vc.scale, vc.resolution])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return cache_dir() / "latents" / f"{config.data.dataset}-{digest}"


def _differences(found: dict, expected: dict) -> list[str]:
    return [f"{k}: cache has {found.get(k)!r}, this run needs {expected[k]!r}"
            for k in expected if found.get(k) != expected[k]]


def build_latent_cache(path: Path, manifest: dict, codec, data: ImageDataset, batch: int = 500,
                       progress: bool = True) -> Path:
    """Encode `data` through `codec` into a new cache at `path` (replacing any old one)."""
    from tqdm.auto import tqdm

    with atomic_directory(path) as tmp:
        latents = np.lib.format.open_memmap(tmp / "latents.npy", mode="w+", dtype=np.float32,
                                            shape=(len(data), *codec.latent_shape))
        for i in tqdm(range(0, len(data), batch), desc="encoding latents", unit="batch",
                      disable=not progress):
            idx = torch.arange(i, min(i + batch, len(data)))
            latents[i:i + len(idx)] = codec.encode(data.batch(idx)[0]).cpu().numpy()
        latents.flush()
        del latents
        np.save(tmp / "labels.npy", np.asarray(data.labels))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return path


def open_latent_cache(config, codec, data: Optional[ImageDataset] = None, rebuild: bool = False,
                      force: bool = False, progress: bool = True) -> LatentDataset:
    """The latent dataset of `config`, memory-mapped. A missing cache is built; a cache that
    does not match its config or data is rebuilt if `rebuild`, else refused with the reason;
    `force` rebuilds in any case."""
    data = data if data is not None else load_dataset(config.data, "train", progress)
    path = latent_cache_path(config)
    expected = cache_manifest(config, codec, data)
    manifest_file = path / "manifest.json"
    stale = True
    if manifest_file.is_file():
        diffs = _differences(json.loads(manifest_file.read_text()), expected)
        if diffs and not rebuild:
            raise DataError(f"latent cache {path} does not match this run (" + "; ".join(diffs) +
                            f"); rebuild it with `t2i prepare --preset {config.preset}` "
                            "(or delete the folder)")
        if diffs:
            log.info("latent cache %s is stale (%s); rebuilding", path, "; ".join(diffs))
        stale = bool(diffs) or force
    elif path.exists() and any(path.iterdir()):
        raise DataError(f"{path} exists but is not a latent cache (no manifest.json); "
                        "delete it or set data.cache_dir elsewhere")
    if stale:
        log.info("encoding %d images into the latent cache %s", len(data), path)
        start = time.perf_counter()
        build_latent_cache(path, expected, codec, data, progress=progress)
        log.info("latent cache built in %.1f s", time.perf_counter() - start)
    return LatentDataset(np.load(path / "latents.npy", mmap_mode="r"),
                         np.load(path / "labels.npy", mmap_mode="r"), data.classes, data.captions)
