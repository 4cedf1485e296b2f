"""COCO's caption annotations, so a COCO folder trains as it is: `annotations/captions_*.json`
(or `captions_*.json` at the top) name each image's file and hold about five captions per image.
The images are looked for beside the annotations, in the split's folder (`train2017/` for
`captions_train2017.json`) or under `images/`. With both splits present only the training
captions are read; `t2i train --preset latent-ddpm data.dataset=folder --data-dir COCO`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from .base import DataError


def caption_files(root: Path) -> list[Path]:
    """The COCO caption annotation files of a folder (the training split's, if it has them)."""
    found = sorted(root.glob("annotations/captions_*.json")) + sorted(root.glob("captions_*.json"))
    train = [f for f in found if "train" in f.stem]
    return train or found


def _image_folder(root: Path, split: str, names: list[str]) -> Path:
    """Where a split's images are: the first candidate folder holding its first image."""
    candidates = [root / split, root / "images" / split, root / "images", root]
    return next((c for c in candidates if names and (c / names[0]).is_file()), root / split)


def coco_rows(root: Path) -> Optional[list[dict]]:
    """{"file": path relative to root, "caption": text} per caption of the folder's COCO
    annotations; None when it has none."""
    files = caption_files(root)
    if not files:
        return None
    rows = []
    for f in files:
        try:
            data = json.loads(f.read_text())
            names = {im["id"]: im["file_name"] for im in data["images"]}
            notes = [(a["image_id"], a["caption"]) for a in data["annotations"]]
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(f"{f}: not a COCO caption file ({type(e).__name__}: {e})") from None
        split = f.stem.removeprefix("captions_")
        folder = _image_folder(root, split, list(names.values())[:1])
        prefix = folder.relative_to(root)
        rows += [{"file": str(prefix / names[i]), "caption": c} for i, c in notes if i in names]
    return rows
