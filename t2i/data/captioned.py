"""Captioned image datasets: a folder of images with a caption file, or a Hugging Face dataset.

Both are read once into an image cache: uint8 [N, C, S, S] (shorter side resized to S, centre
crop) in a raw file that training memory-maps, with the captions beside it. So a dataset larger
than RAM trains, a streamed Hugging Face dataset is downloaded and decoded once, and everything
downstream (latent caches, DDP shards, the sampler) treats it like Fashion-MNIST. Images that
cannot be used are skipped and counted by reason, never a crash and never a hang: a bad row (not
an object, no file or caption, a caption that is not text), a file outside the folder (`..`, an
absolute path, a symlink leading out), a missing file, not a regular file (a FIFO is never
opened), too large (over MAX_PIXELS, checked before decoding), unreadable (corrupt bytes), zero
size, a mode that does not convert, no caption.

Folder layout: `captions.jsonl` (one `{"file": ..., "caption": ...}` per line) or
`captions.csv` (header with `file,caption`), paths relative to the folder; or COCO's
`annotations/captions_*.json` (coco.py). An image listed on several lines gets several captions;
training draws one at random each time. A folder without any of these is captioned from its
file and folder names (filenames.py: clip-art collections).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import stat
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..utils.fsutil import Lock, atomic_directory, cache_root
from .base import DataError, ImageDataset
from .coco import coco_rows
from .filenames import filename_rows

log = logging.getLogger(__name__)

CAPTION_FILES = ("captions.jsonl", "captions.csv")
IMAGE_KEYS = ("file", "image", "file_name", "filename", "path", "img", "jpg", "jpeg", "png", "webp")
CAPTION_KEYS = ("caption", "captions", "text", "prompt", "sentences", "json")
CACHE_FORMAT = 1

Record = tuple[str, Callable[[], Image.Image], list[str]]  # (name, open the image, captions)


class BadImage(ValueError):
    """An image the cache skips, with the reason it is counted under."""
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
    side = min(image.size)
    if max(image.size) > 4 * side:
        # A long strip resized whole would allocate its full length at the new scale: crop its
        # centre square first (the result is the same crop).
        left, top = (image.width - side) // 2, (image.height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    scale = size / min(image.size)
    w, h = max(size, round(image.width * scale)), max(size, round(image.height * scale))
    image = image.resize((w, h), Image.Resampling.BICUBIC, reducing_gap=3.0)
    left, top = (w - size) // 2, (h - size) // 2
    array = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)
    return array.reshape(size, size, channels).transpose(2, 0, 1)  # (C, S, S)


# An image is refused before it is decoded if it has more pixels than this (a 10,000 x 5,000
# photo passes; a decompression bomb or a 200,000-pixel-wide strip does not).
MAX_PIXELS = 50_000_000


def _open(value) -> Image.Image:
    """An image from what a dataset holds: a PIL image, bytes, a path, or the
    {"bytes", "path"} dict of an undecoded Hugging Face Image column. Its size is checked
    against MAX_PIXELS from the header, before decoding."""
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
    if image.width * image.height > MAX_PIXELS:
        raise BadImage("too large")
    image.load()  # decode now, so a truncated file fails here
    return image


def _captions(value) -> list[str]:
    """Captions from a caption field: a string, a list of strings, or a dict holding one
    (e.g. the `json` column of a WebDataset: {"prompt": ...}). Anything else is a bad row."""
    if isinstance(value, dict):
        value = next((value[k] for k in ("prompt", "caption", "text") if k in value), None)
    if isinstance(value, str):
        value = [value]
    if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise BadImage("bad row")
    return [v.strip() for v in value or [] if v.strip()]


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


def _field(example, column: str):
    """`column` of an example; a dotted column (`json.prompt`) reaches into a dict. A row that
    lacks it is a bad row."""
    value = example
    for part in column.split("."):
        if not isinstance(value, dict) or part not in value:
            raise BadImage("bad row")
        value = value[part]
    return value


# ----------------------------------------------------------------------------- sources
#
# A source gives (count, records, fingerprint, rejected): `rejected` counts, by reason, the rows
# it refused before any image was opened, and may fill up while `records` is consumed.

def _read_rows(path: Path, rejected: Counter) -> list:
    """The rows of a captions.jsonl or captions.csv; a line that is not JSON is a bad row."""
    if path.suffix == ".csv":
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                rejected["bad row"] += 1
    return rows


def _check_file(root: Path, name) -> tuple[Path, os.stat_result]:
    """The regular file `name` inside `root` (symlinks followed), or BadImage saying why not."""
    if not isinstance(name, str) or not name:
        raise BadImage("bad row")
    path = root / name
    if Path(name).is_absolute() or not path.resolve().is_relative_to(root):
        raise BadImage("outside the folder")
    try:
        st = path.stat()
    except OSError:
        raise BadImage("missing file") from None
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
        raise BadImage("not a regular file")
    return path, st


def folder_records(cfg) -> tuple[int, Iterator[Record], dict, Counter]:
    """(count, records, fingerprint, rejected) of a captioned folder. Rows that cannot be used —
    malformed, naming a file outside the folder, missing, or not a regular file — are counted
    by reason and never opened."""
    if not cfg.data_dir:
        raise DataError("data.dataset=folder needs the folder: --data-dir DIR (or data.data_dir=DIR)")
    root = Path(cfg.data_dir).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    found = [root / f for f in CAPTION_FILES if (root / f).is_file()]
    rejected: Counter = Counter()
    if found:
        rows, source = _read_rows(found[0], rejected), found[0]
        captions_text = found[0].read_bytes()
    else:  # COCO's caption annotations (coco.py), else captions from file and folder names
        coco = coco_rows(root)
        rows, source = coco if coco is not None else filename_rows(root), root
        captions_text = json.dumps(rows).encode()
        if not rows:
            raise DataError(f"{root}: no {' or '.join(CAPTION_FILES)}, no COCO captions_*.json "
                            "and no images to caption from their file names")
    objects = [r for r in rows if isinstance(r, dict)]
    if len(objects) < len(rows):
        rejected["bad row"] += len(rows) - len(objects)
    if not objects:
        raise DataError(f"{source}: no usable rows (skipped: {dict(rejected)})")
    keys = list(dict.fromkeys(k for r in objects for k in r))
    image_key = _pick(keys, cfg.image_column, IMAGE_KEYS, "image", str(source))
    caption_key = _pick(keys, cfg.caption_column, CAPTION_KEYS, "caption", str(source))
    by_image: dict[str, list[str]] = {}
    for row in objects:
        try:
            caps = _captions(_field(row, caption_key))
            name = row.get(image_key)
            if not isinstance(name, str):
                raise BadImage("bad row")
        except BadImage as e:
            rejected[e.reason] += 1
            continue
        by_image.setdefault(name, []).extend(caps)
    items, stats = [], []
    for name, caps in list(by_image.items())[:cfg.subset or None]:
        try:
            path, st = _check_file(root, name)
        except BadImage as e:
            rejected[e.reason] += 1
            continue
        items.append((name, path, caps))
        stats.append((name, st.st_size, st.st_mtime_ns))  # a changed image rebuilds the cache
    fingerprint = {"captions_sha256": hashlib.sha256(captions_text).hexdigest(),
                   "files_sha256": hashlib.sha256(json.dumps(stats).encode()).hexdigest()}

    def records():
        for name, path, caps in items:
            yield name, lambda path=path: _open(path), caps
    return len(items), records(), fingerprint, rejected


def hf_records(cfg) -> tuple[int | None, Iterator[Record], dict, Counter]:
    """(count or None when streaming, records, fingerprint, rejected) of a Hugging Face
    dataset, by hub id or local path. Streaming reads it example by example, never whole; an
    example without the image or caption column is a bad row."""
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
    rejected: Counter = Counter()

    def records():
        for i, example in enumerate(ds):
            if cfg.subset and i >= cfg.subset:
                return
            try:
                value, caps = _field(example, image_col), _captions(_field(example, caption_col))
            except BadImage as e:
                rejected[e.reason] += 1
                continue
            yield f"#{i}", lambda v=value: _open(v), caps
    return count, records(), fingerprint, rejected


# ----------------------------------------------------------------------------- the image cache

# Data settings that do not change what the image cache holds: where it lives, how many of its
# images training leaves out (registry.load_dataset takes them off after), and where the emoji
# font was found (its file's size and date are in the emoji source's fingerprint instead).
NOT_CACHED = ("cache_dir", "holdout", "font")


def image_cache_path(cfg) -> Path:
    """A folder of the run's cache root named by the data config."""
    key = json.dumps({k: v for k, v in dataclasses.asdict(cfg).items() if k not in NOT_CACHED},
                     sort_keys=True)
    return cache_root(cfg) / "images" / f"{cfg.dataset}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def build_image_cache(path: Path, records: Iterator[Record], count: int | None, size: int,
                      channels: int, manifest: dict, progress: bool = True,
                      rejected: Optional[Counter] = None) -> dict:
    """Decode, resize and write every record's image to a new cache at `path` (built in a
    temporary folder and renamed into place, so an interrupted build leaves nothing). What
    cannot be used is skipped and counted by reason, with the source's `rejected` rows."""
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
        skipped.update(rejected or {})  # complete now that the records are consumed
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


def open_image_cache(cfg, rebuild: bool = False, progress: bool = True,
                     source: Optional[Callable] = None) -> "CaptionedDataset":
    """The captioned dataset of a `DataConfig`, memory-mapped from its image cache, which is
    built on first use and rebuilt when the source or the settings changed. `source(cfg)` gives
    (count, records, fingerprint, rejected); by default the folder's or the HF dataset's."""
    source = source or (folder_records if cfg.dataset == "folder" else hf_records)
    count, records, fingerprint, rejected = source(cfg)
    expected = {"format": CACHE_FORMAT, "data": dataclasses.asdict(cfg) | dict.fromkeys(NOT_CACHED),
                **fingerprint}
    path = image_cache_path(cfg)
    # Two processes preparing one cache: the second waits, then finds it current.
    with Lock(path.parent, f".{path.name}.lock", wait=True, what="the image cache"):
        found, problem = _check_image_cache(path, expected)
        if rebuild or problem:
            if found is not None:
                log.info("image cache %s: %s; rebuilding", path, problem or "rebuild asked")
            found = build_image_cache(path, records, count, cfg.image_size, cfg.channels, expected,
                                      progress, rejected)
    images = np.memmap(path / "images.u8", dtype=np.uint8, mode="r",
                       shape=(found["count"], *found["shape"]))
    captions = json.loads((path / "captions.json").read_text())
    return CaptionedDataset(images, np.full(len(captions), -1, dtype=np.int64), None, captions,
                            skipped=found.get("skipped", {}))


def _check_image_cache(path: Path, expected: dict) -> tuple[Optional[dict], str]:
    """The cache's manifest (None if it has none that reads) and what is wrong with the cache
    ("" if nothing): settings or source changed, or files cut short or missing."""
    try:
        found = json.loads((path / "manifest.json").read_text())
        size = found["count"] * math.prod(found["shape"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, "no readable manifest"
    if any(found.get(k) != v for k, v in expected.items()):
        return found, "out of date"
    images = path / "images.u8"
    if not images.is_file() or images.stat().st_size != size or not (path / "captions.json").is_file():
        return found, "files missing or cut short"
    return found, ""


class CaptionedDataset(ImageDataset):
    """An image cache: `batch` reads only the memory-mapped rows asked for."""

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = np.asarray(idx)
        images = torch.from_numpy(np.ascontiguousarray(self.images[rows]))
        return images.float().div_(127.5).sub_(1.0), torch.from_numpy(self.labels[rows])
