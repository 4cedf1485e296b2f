"""Captioned image datasets: a folder of images with a caption file, or a Hugging Face dataset.

Both are read once into an image cache: uint8 [N, C, S, S] (shorter side resized to S, centre
crop) in a raw file that training memory-maps, with the captions beside it. So a dataset larger
than RAM trains, a streamed Hugging Face dataset is downloaded and decoded once, and everything
downstream (latent caches, DDP shards, the sampler) treats it like Fashion-MNIST. Images that
cannot be read (corrupt bytes, zero size, a mode that does not convert) are skipped and counted,
never a crash.

Folder layout: `captions.jsonl` (one `{"file": ..., "caption": ...}` per line) or
`captions.csv` (header with `file,caption`), paths relative to the folder. An image listed on
several lines gets several captions; training draws one at random each time.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..fsutil import atomic_directory, cache_root
from .base import DataError, ImageDataset

log = logging.getLogger(__name__)

CAPTION_FILES = ("captions.jsonl", "captions.csv")
IMAGE_KEYS = ("file", "image", "file_name", "filename", "path", "img", "jpg", "jpeg", "png", "webp")
CAPTION_KEYS = ("caption", "captions", "text", "prompt", "sentences", "json")
CACHE_FORMAT = 1

Record = tuple[str, Callable[[], Image.Image], list[str]]  # (name, open the image, captions)


class BadImage(ValueError):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def to_array(image: Image.Image, size: int, channels: int) -> np.ndarray:
    """uint8 [C, size, size]: the shorter side resized to `size`, then a centre crop."""
    if image.width == 0 or image.height == 0:
        raise BadImage("zero size")
    if image.mode in ("RGBA", "LA") or "transparency" in image.info:
        # Transparent pixels become white, not whatever colour they happen to store.
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    try:
        image = image.convert("RGB" if channels == 3 else "L")
    except (ValueError, OSError):
        raise BadImage(f"mode {image.mode}") from None
    scale = size / min(image.size)
    w, h = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    image = image.resize((w, h), Image.Resampling.BICUBIC, reducing_gap=3.0)
    left, top = (w - size) // 2, (h - size) // 2
    array = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)
    return array.reshape(size, size, channels).transpose(2, 0, 1)  # (C, S, S)


def _open(value) -> Image.Image:
    """An image from what a dataset holds: a PIL image, bytes, a path, or the
    {"bytes", "path"} dict of an undecoded Hugging Face Image column."""
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):
        value = value.get("bytes") or value.get("path")
    if isinstance(value, (bytes, bytearray)):
        image = Image.open(io.BytesIO(value))
    elif isinstance(value, (str, os.PathLike)):
        image = Image.open(value)
    else:
        raise BadImage(f"no image in a {type(value).__name__}")
    image.load()  # decode now, so a truncated file fails here
    return image


def _captions(value) -> list[str]:
    """Captions from a caption field: a string, a list of strings, or a dict holding one
    (e.g. the `json` column of a WebDataset: {"prompt": ...})."""
    if isinstance(value, dict):
        value = next((value[k] for k in ("prompt", "caption", "text") if k in value), None)
    if isinstance(value, str):
        value = [value]
    return [v.strip() for v in value or [] if isinstance(v, str) and v.strip()]


def _pick(keys: list[str], wanted: str, candidates: tuple[str, ...], what: str, source: str) -> str:
    if wanted:
        if wanted.split(".")[0] not in keys:
            raise DataError(f"{source}: no {what} column {wanted!r}; it has {keys}")
        return wanted
    for c in candidates:
        if c in keys:
            return c
    raise DataError(f"{source}: cannot tell which column holds the {what} (has {keys}); "
                    f"set data.{what}_column")


def _field(example: dict, column: str):
    """`column` of an example; a dotted column (`json.prompt`) reaches into a dict."""
    value = example
    for part in column.split("."):
        value = value[part]
    return value


# ----------------------------------------------------------------------------- sources

def folder_records(cfg) -> tuple[int, Iterator[Record], dict]:
    """(count, records, fingerprint) of a captioned folder."""
    if not cfg.data_dir:
        raise DataError("data.dataset=folder needs the folder: --data-dir DIR (or data.data_dir=DIR)")
    root = Path(cfg.data_dir).expanduser().resolve()
    found = [root / f for f in CAPTION_FILES if (root / f).is_file()]
    if not found:
        raise DataError(f"{root}: no {' or '.join(CAPTION_FILES)} (one image path and caption per row)")
    rows: list[dict] = []
    if found[0].suffix == ".jsonl":
        for n, line in enumerate(found[0].read_text().splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataError(f"{found[0]}:{n}: not JSON ({e})") from None
    else:
        with open(found[0], newline="") as f:
            rows = list(csv.DictReader(f))
    if not rows:
        raise DataError(f"{found[0]}: no rows")
    keys = list(rows[0])
    image_key = _pick(keys, cfg.image_column, IMAGE_KEYS, "image", str(found[0]))
    caption_key = _pick(keys, cfg.caption_column, CAPTION_KEYS, "caption", str(found[0]))
    by_image: dict[str, list[str]] = {}
    for row in rows:
        by_image.setdefault(str(row[image_key]), []).extend(_captions(_field(row, caption_key)))
    items = list(by_image.items())[:cfg.subset or None]

    def stat(name: str) -> tuple[str, int, int]:  # size and mtime: a changed image rebuilds
        if not (root / name).is_file():
            return name, -1, -1
        st = (root / name).stat()
        return name, st.st_size, st.st_mtime_ns
    stats = [stat(name) for name, _ in items]
    fingerprint = {"captions_sha256": hashlib.sha256(found[0].read_bytes()).hexdigest(),
                   "files_sha256": hashlib.sha256(json.dumps(stats).encode()).hexdigest()}

    def records():
        for name, caps in items:
            yield name, lambda name=name: _open(root / name), caps
    return len(items), records(), fingerprint


def hf_records(cfg) -> tuple[int | None, Iterator[Record], dict]:
    """(count or None when streaming, records, fingerprint) of a Hugging Face dataset, by hub
    id or local path. Streaming reads it example by example, never whole."""
    try:
        import datasets
    except ImportError:
        raise ImportError("data.dataset=hf needs the datasets library: pip install 't2i[data]'") from None
    if not cfg.hf_name:
        raise DataError("data.dataset=hf needs data.hf_name=NAME (a hub id or a local dataset path)")
    try:
        ds = datasets.load_dataset(cfg.hf_name, cfg.hf_config or None, split=cfg.hf_split,
                                   streaming=cfg.streaming)
    except (FileNotFoundError, ValueError, OSError) as e:
        raise DataError(f"cannot load the dataset {cfg.hf_name!r} (split {cfg.hf_split!r}): {e}") from None
    features = ds.features or {}
    keys = list(features) or list(ds.column_names or [])
    if not keys:  # a stream that does not declare its columns (e.g. WebDataset): ask its first example
        keys = list(next(iter(ds), {}).keys())
    image_col = _pick(keys, cfg.image_column, IMAGE_KEYS, "image", cfg.hf_name)
    caption_col = _pick(keys, cfg.caption_column, CAPTION_KEYS, "caption", cfg.hf_name)
    if isinstance(features.get(image_col), datasets.Image):
        # Decode ourselves, so one corrupt image is skipped instead of ending the iteration.
        ds = ds.cast_column(image_col, datasets.Image(decode=False))
    count = None if cfg.streaming else min(len(ds), cfg.subset or len(ds))
    fingerprint = {"fingerprint": getattr(ds, "_fingerprint", None)}

    def records():
        for i, example in enumerate(ds):
            if cfg.subset and i >= cfg.subset:
                return
            yield (f"#{i}", lambda v=example[image_col]: _open(v),
                   _captions(_field(example, caption_col)))
    return count, records(), fingerprint


# ----------------------------------------------------------------------------- the image cache

def image_cache_path(cfg) -> Path:
    """A folder of the run's cache root named by the data config."""
    key = json.dumps({k: v for k, v in dataclasses.asdict(cfg).items() if k != "cache_dir"},
                     sort_keys=True)
    return cache_root(cfg) / "images" / f"{cfg.dataset}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def build_image_cache(path: Path, records: Iterator[Record], count: int | None, size: int,
                      channels: int, manifest: dict, progress: bool = True) -> dict:
    """Decode, resize and write every record's image to a new cache at `path` (built in a
    temporary folder and renamed into place, so an interrupted build leaves nothing)."""
    skipped: Counter = Counter()
    captions: list[list[str]] = []
    with atomic_directory(path) as tmp:
        with open(tmp / "images.u8", "wb") as out:
            for name, load, caps in tqdm(records, total=count, desc="reading images", unit="img",
                                         disable=not progress):
                if not caps:
                    skipped["no caption"] += 1
                    continue
                try:
                    array = to_array(load(), size, channels)
                except BadImage as e:
                    skipped[e.reason] += 1
                    continue
                except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as e:
                    log.debug("skipping %s: %s", name, e)
                    skipped["unreadable"] += 1
                    continue
                out.write(array.tobytes())
                captions.append(caps)
        if not captions:
            raise DataError(f"no usable image among {sum(skipped.values())} "
                            f"(skipped: {dict(skipped)})")
        manifest = {**manifest, "count": len(captions), "shape": [channels, size, size],
                    "skipped": dict(skipped)}
        (tmp / "captions.json").write_text(json.dumps(captions))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    if skipped:
        log.warning("skipped %d of %d images: %s", sum(skipped.values()),
                    sum(skipped.values()) + len(captions),
                    ", ".join(f"{n} {reason}" for reason, n in skipped.items()))
    return manifest


def open_image_cache(cfg, rebuild: bool = False, progress: bool = True) -> ImageDataset:
    """The captioned dataset of a `DataConfig`, memory-mapped from its image cache, which is
    built on first use and rebuilt when the source or the settings changed."""
    count, records, fingerprint = (folder_records if cfg.dataset == "folder" else hf_records)(cfg)
    expected = {"format": CACHE_FORMAT, "data": dataclasses.asdict(cfg) | {"cache_dir": None},
                **fingerprint}
    path = image_cache_path(cfg)
    manifest_file = path / "manifest.json"
    found = json.loads(manifest_file.read_text()) if manifest_file.is_file() else None
    if rebuild or found is None or any(found.get(k) != v for k, v in expected.items()):
        if found is not None:
            log.info("image cache %s is out of date; rebuilding", path)
        found = build_image_cache(path, records, count, cfg.image_size, cfg.channels, expected,
                                  progress)
    images = np.memmap(path / "images.u8", dtype=np.uint8, mode="r",
                       shape=(found["count"], *found["shape"]))
    captions = json.loads((path / "captions.json").read_text())
    return CaptionedDataset(images, np.full(len(captions), -1, dtype=np.int64), None, captions)


class CaptionedDataset(ImageDataset):
    """An image cache: `batch` reads only the memory-mapped rows asked for."""

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = np.asarray(idx)
        images = torch.from_numpy(np.ascontiguousarray(self.images[rows]))
        return images.float().div_(127.5).sub_(1.0), torch.from_numpy(self.labels[rows])
