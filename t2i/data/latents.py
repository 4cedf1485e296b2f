"""Latent caches: a training set encoded once through a frozen VAE, memory-mapped by training.

A latent cache is a directory holding latents.npy (float32 [N, c, h, w]), labels.npy and
manifest.json. Training memory-maps the arrays, so a dataset larger than RAM trains the same
way. The manifest records everything the latents depend on — the data (its checksum), the VAE
(name, weights checksum, scale, resolution) and the t2i version — and a cache whose manifest
differs from what a run expects is refused, never silently used. A cache is built in a
temporary directory and renamed into place once complete, so an interrupted `t2i prepare`
leaves nothing that looks like a cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from .._version import __version__
from ..utils.fsutil import Lock, atomic_directory, cache_dir
from .base import DataError, ImageDataset
from .registry import load_dataset

log = logging.getLogger(__name__)

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


def latent_cache_path(config) -> Path:
    """Where the cache of a config lives: `data.cache_dir`/latents, else a folder of the user
    cache named by the dataset and the VAE settings (so different VAEs never share a folder)."""
    if config.data.cache_dir:
        return Path(config.data.cache_dir) / "latents"
    vc = config.vae
    # The images are what is cached: where they live and which captions train on them is not.
    data = {k: v for k, v in dataclasses.asdict(config.data).items() if k not in ("cache_dir", "captions")}
    key = json.dumps([data, vc.resolved_name(), vc.scale, vc.resolution])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return cache_dir() / "latents" / f"{config.data.dataset}-{digest}"


def _differences(found: dict, expected: dict) -> list[str]:
    return [f"{k}: cache has {found.get(k)!r}, this run needs {expected[k]!r}"
            for k in expected if found.get(k) != expected[k]]


def build_latent_cache(path: Path, manifest: dict, codec, data: ImageDataset, batch: int = 500,
                       progress: bool = True) -> Path:
    """Encode `data` through `codec` into a new cache at `path` (replacing any old one)."""
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


def _stale(path: Path, expected: dict, rebuild: bool, preset: str) -> bool:
    """Whether the cache at `path` must be built: missing, cut short, or (if `rebuild`, else an
    error saying why) made for other settings."""
    manifest_file = path / "manifest.json"
    if not manifest_file.is_file():
        if path.exists() and any(path.iterdir()):
            raise DataError(f"{path} exists but is not a latent cache (no manifest.json); "
                            "delete it or set data.cache_dir elsewhere")
        return True
    try:
        diffs = _differences(json.loads(manifest_file.read_text()), expected)
    except ValueError:
        diffs = ["manifest.json: not JSON"]
    if diffs and not rebuild:
        raise DataError(f"latent cache {path} does not match this run (" + "; ".join(diffs) +
                        f"); rebuild it with `t2i prepare --preset {preset}` (or delete the folder)")
    if not diffs and not _complete(path, expected):
        diffs = ["its arrays are cut short or missing"]
    if diffs:
        log.info("latent cache %s is stale (%s); rebuilding", path, "; ".join(diffs))
    return bool(diffs)


def _complete(path: Path, expected: dict) -> bool:
    """Whether latents.npy and labels.npy hold the arrays the manifest promises (their headers
    read, their files as long as the headers say)."""
    for name, shape in (("latents.npy", expected["latent_shape"]), ("labels.npy", [])):
        try:
            array = np.load(path / name, mmap_mode="r")
        except (OSError, ValueError):
            return False
        if len(array) != expected["count"] or list(array.shape[1:]) != list(shape):
            return False
    return True


def open_latent_cache(config, codec, data: Optional[ImageDataset] = None, rebuild: bool = False,
                      force: bool = False, progress: bool = True) -> LatentDataset:
    """The latent dataset of `config`, memory-mapped. A missing cache is built; a cache that
    does not match its config or data is rebuilt if `rebuild`, else refused with the reason;
    `force` rebuilds in any case."""
    data = data if data is not None else load_dataset(config.data, "train", progress)
    path = latent_cache_path(config)
    expected = cache_manifest(config, codec, data)
    # Two processes preparing one cache: the second waits, then finds it current.
    with Lock(path.parent, f".{path.name}.lock", wait=True, what="the latent cache"):
        if _stale(path, expected, rebuild, config.preset) or force:
            log.info("encoding %d images into the latent cache %s", len(data), path)
            start = time.perf_counter()
            build_latent_cache(path, expected, codec, data, progress=progress)
            log.info("latent cache built in %.1f s", time.perf_counter() - start)
    return LatentDataset(np.load(path / "latents.npy", mmap_mode="r"),
                         np.load(path / "labels.npy", mmap_mode="r"), data.classes, data.captions,
                         data.template_share)
