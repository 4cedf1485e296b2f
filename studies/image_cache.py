"""The image-cache build on real data, timed: how long a dataset takes to become trainable, what
was skipped and why, and what the cache weighs. The numbers on the emoji study page
(docs/studies/emoji.md) come from

    python studies/image_cache.py --dataset emoji --image-size 32
    python studies/image_cache.py --dataset folder --data-dir /usr/share/openclipart/png \\
        --image-size 32 --grid docs/openclipart-cache.png

(Debian's fonts-noto-color-emoji and openclipart-png). Each run builds into a fresh temporary
cache folder, so nothing earlier is reused; a JSON summary is printed (and written with --json).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import torch

from t2i.data import image_cache_path, load_dataset
from t2i.sections import DataConfig
from t2i.utils.images import make_grid


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="folder", choices=["folder", "emoji"])
    p.add_argument("--data-dir", help="the folder (folder dataset)")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--grid", help="also save 64 random cached images here, their captions printed")
    p.add_argument("--json", help="write the summary here too")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        cfg = DataConfig(dataset=args.dataset, data_dir=args.data_dir, image_size=args.image_size,
                         cache_dir=cache)
        start = time.perf_counter()
        data = load_dataset(cfg)
        seconds = time.perf_counter() - start
        path = image_cache_path(cfg)
        manifest = json.loads((path / "manifest.json").read_text())
        size = sum(f.stat().st_size for f in path.iterdir())
        captions = [c for caps in data.captions for c in caps]
        rng = random.Random(0)
        pick = sorted(rng.sample(range(len(data)), min(64, len(data))))
        summary = {"dataset": args.dataset, "data_dir": args.data_dir, "image_size": args.image_size,
                   "build_seconds": round(seconds, 1), "images": manifest["count"],
                   "skipped": manifest["skipped"], "cache_MiB": round(size / 2**20, 1),
                   "captions": len(captions), "distinct_captions": len(set(captions)),
                   "examples": [data.captions[i][-1] for i in pick[:12]]}
        if args.grid:
            images = data.batch(torch.tensor(pick))[0]
            make_grid((images + 1) / 2, ncol=16, scale=2).save(args.grid)
            summary["grid"] = args.grid
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
