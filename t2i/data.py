"""Datasets and captions.

Fashion-MNIST comes as four gzipped IDX files. We look for them in, in order: an explicit
directory, `$T2I_DATA`, the user cache directory, and Debian's `dataset-fashion-mnist` package;
if none has them we download from the dataset's official mirror into the cache. Every file is
checked against the SHA-256 of its *decompressed* bytes: Debian recompresses the archives (their
.gz checksums differ from upstream) but the data inside is identical, and a truncated or corrupt
file must be a clear error naming it, never a silently wrong dataset.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
import shutil
import struct
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

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

# ----------------------------------------------------------------------------- captions

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# Other words a user may type for each class (the class name itself is always accepted).
FASHION_MNIST_SYNONYMS = [
    ["t-shirt", "tshirt", "t shirt", "tee", "top", "tee shirt"],
    ["trousers", "pants", "jeans", "pair of trousers", "pair of pants"],
    ["sweater", "jumper"],
    ["gown", "frock"],
    ["jacket", "overcoat"],
    ["sandals", "pair of sandals"],
    ["blouse", "button-up shirt", "button-down shirt"],
    ["sneakers", "trainer", "trainers", "running shoe", "running shoes", "pair of sneakers"],
    ["handbag", "purse", "tote bag"],
    ["boot", "boots", "ankle boots", "pair of ankle boots"],
]

# "{a}" becomes "a" or "an" to suit the name that follows.
CAPTION_TEMPLATES = ["{name}", "{a} {name}", "a photo of {a} {name}", "a picture of {a} {name}",
                     "an image of {a} {name}", "a drawing of {a} {name}"]


def _article(name: str) -> str:
    return "an" if name[0] in "aeiou" else "a"


def normalize_prompt(prompt: str) -> str:
    """Lower-case, trim punctuation at the ends, and collapse whitespace."""
    return re.sub(r"\s+", " ", prompt.strip().lower()).strip(" .!?,;:")


def caption(name: str, template: str) -> str:
    name = name.lower()
    return template.format(a=_article(name), name=name)


def prompt_lookup(class_names: list[str], synonyms: list[list[str]]) -> dict[str, int]:
    """Every caption a class-conditional model understands, mapped to its class index."""
    table: dict[str, int] = {}
    for idx, (name, extra) in enumerate(zip(class_names, synonyms)):
        for word in [name, *extra]:
            for template in CAPTION_TEMPLATES:
                table[normalize_prompt(caption(word, template))] = idx
    return table


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


def read_idx(path: Path, sha256: Optional[str] = None) -> np.ndarray:
    """Read a (possibly gzipped) IDX file, verifying the decompressed bytes' SHA-256 if given."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot decompress ({e}); the file is truncated or corrupt, "
                        "delete it to fetch a fresh copy") from None
    if sha256 is not None and hashlib.sha256(raw).hexdigest() != sha256:
        raise DataError(f"{path}: checksum mismatch; the file is corrupt or not Fashion-MNIST, "
                        "delete it to fetch a fresh copy")
    return parse_idx(raw, str(path))


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "t2i"


def candidate_dirs(data_dir: Optional[str]) -> list[Path]:
    dirs = []
    if data_dir:
        dirs.append(Path(data_dir))
    if os.environ.get("T2I_DATA"):
        dirs.append(Path(os.environ["T2I_DATA"]))
    dirs += [cache_dir() / "fashion-mnist", DEBIAN_DIR]
    return dirs


def download(url: str, dest: Path, sha256: str, progress: bool = True) -> None:
    """Fetch `url` to `dest` atomically, verifying the decompressed SHA-256 before it lands."""
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
        _verify_gz(Path(tmp), sha256, url)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _verify_gz(path: Path, sha256: str, source: str) -> None:
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{source}: downloaded file is not a valid gzip ({e})") from None
    if hashlib.sha256(raw).hexdigest() != sha256:
        raise DataError(f"{source}: downloaded file fails its checksum")


def find_fashion_mnist(data_dir: Optional[str] = None, download_ok: bool = True) -> Path:
    """The first directory holding all four files, downloading into the cache if none does."""
    for d in candidate_dirs(data_dir):
        if all((d / f).is_file() for f in FASHION_MNIST_FILES):
            return d
    searched = ", ".join(str(d) for d in candidate_dirs(data_dir))
    if not download_ok:
        raise DataError(f"Fashion-MNIST not found in: {searched}")
    mirror = os.environ.get("T2I_FASHION_MNIST_MIRROR", FASHION_MNIST_MIRROR)
    dest = Path(data_dir) if data_dir else cache_dir() / "fashion-mnist"
    log.info("Fashion-MNIST not found in %s; downloading from %s to %s", searched, mirror, dest)
    for name, (sha, _) in FASHION_MNIST_FILES.items():
        if not (dest / name).is_file():
            try:
                download(mirror.rstrip("/") + "/" + name, dest / name, sha)
            except OSError as e:
                raise DataError(f"could not download {name} from {mirror} ({e}); install Debian's "
                                "dataset-fashion-mnist or put the four .gz files in --data-dir") from None
    return dest


# ----------------------------------------------------------------------------- datasets

@dataclass
class ImageDataset:
    """Images as uint8 [N, C, H, W] with integer labels and the names of their classes."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    synonyms: list[list[str]]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images scaled to [-1, 1] and their labels."""
        return self.images[idx].float().div_(127.5).sub_(1.0), self.labels[idx]


def load_fashion_mnist(split: str = "train", data_dir: Optional[str] = None,
                       subset: int = 0) -> ImageDataset:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    root = find_fashion_mnist(data_dir)
    prefix = "train" if split == "train" else "t10k"
    images_name, labels_name = f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"
    images = read_idx(root / images_name, FASHION_MNIST_FILES[images_name][0])
    labels = read_idx(root / labels_name, FASHION_MNIST_FILES[labels_name][0])
    if subset:
        images, labels = images[:subset], labels[:subset]
    return ImageDataset(torch.from_numpy(images.copy()).unsqueeze(1),
                        torch.from_numpy(labels.astype(np.int64)),
                        FASHION_MNIST_CLASSES, FASHION_MNIST_SYNONYMS)


def load_dataset(cfg, split: str = "train") -> ImageDataset:
    """The dataset named by a `DataConfig`."""
    if cfg.dataset == "fashion-mnist":
        return load_fashion_mnist(split, cfg.data_dir, cfg.subset if split == "train" else 0)
    raise ValueError(f"unknown dataset {cfg.dataset!r}; one of ['fashion-mnist']")


def dataset_info(cfg) -> dict:
    """What a model needs to know of its dataset without loading it: shape and class names."""
    if cfg.dataset == "fashion-mnist":
        return {"shape": (1, 28, 28), "class_names": FASHION_MNIST_CLASSES,
                "synonyms": FASHION_MNIST_SYNONYMS}
    raise ValueError(f"unknown dataset {cfg.dataset!r}; one of ['fashion-mnist']")



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


def _sha256_tensors(tensors) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(np.ascontiguousarray(t.detach().cpu().numpy()).tobytes())
    return h.hexdigest()


def cache_manifest(config, codec, data: ImageDataset) -> dict:
    """What a latent cache of `data` through `codec` must record to be reused safely."""
    from . import __version__

    return {"format": CACHE_FORMAT, "t2i_version": __version__,
            "dataset": config.data.dataset, "split": "train", "subset": config.data.subset,
            "count": len(data), "data_sha256": _sha256_tensors([data.images, data.labels]),
            "vae": codec.name, "vae_sha256": _sha256_tensors(codec.vae.state_dict().values()),
            "scale": codec.scale, "resolution": codec.resolution,
            "latent_shape": list(codec.latent_shape), "dtype": "float32",
            "text": None}  # class-label encoders have nothing to cache


def latent_cache_path(config) -> Path:
    """Where the cache of a config lives: `data.cache_dir`, else a folder of the user cache
    named by the dataset and the VAE settings (so different VAEs never share a folder)."""
    if config.data.cache_dir:
        return Path(config.data.cache_dir)
    vc = config.vae
    key = json.dumps([config.data.dataset, config.data.subset, vc.resolved_name(), vc.scale,
                      vc.resolution])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return cache_dir() / "latents" / f"{config.data.dataset}-{digest}"


def _differences(found: dict, expected: dict) -> list[str]:
    return [f"{k}: cache has {found.get(k)!r}, this run needs {expected[k]!r}"
            for k in expected if found.get(k) != expected[k]]


def build_latent_cache(path: Path, manifest: dict, codec, data: ImageDataset, batch: int = 500,
                       progress: bool = True) -> Path:
    """Encode `data` through `codec` into a new cache at `path` (replacing any old one)."""
    from tqdm.auto import tqdm

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.part-"))
    try:
        latents = np.lib.format.open_memmap(tmp / "latents.npy", mode="w+", dtype=np.float32,
                                            shape=(len(data), *codec.latent_shape))
        for i in tqdm(range(0, len(data), batch), desc="encoding latents", unit="batch",
                      disable=not progress):
            idx = torch.arange(i, min(i + batch, len(data)))
            latents[i:i + len(idx)] = codec.encode(data.batch(idx)[0]).cpu().numpy()
        latents.flush()
        del latents
        np.save(tmp / "labels.npy", data.labels.numpy())
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old-"))
            os.replace(path, old / "cache")
            shutil.rmtree(old)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path


def open_latent_cache(config, codec, data: Optional[ImageDataset] = None, rebuild: bool = False,
                      force: bool = False, progress: bool = True) -> LatentDataset:
    """The latent dataset of `config`, memory-mapped. A missing cache is built; a cache that
    does not match its config or data is rebuilt if `rebuild`, else refused with the reason;
    `force` rebuilds in any case."""
    data = data if data is not None else load_dataset(config.data, "train")
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
                         np.load(path / "labels.npy", mmap_mode="r"),
                         data.class_names, data.synonyms)
