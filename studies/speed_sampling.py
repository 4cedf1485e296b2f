"""The speed study's sampling numbers (docs/studies/speed.md, "Compiled sampling"): img/s of a
checkpoint's pipeline uncompiled and compiled (`Pipeline(..., compile=True)`) at several images
per call, the two interleaved, medians of three calls; and, with --products, how fast this CPU
runs the matrix products of such a call alone, in fp32 and bf16.

    python studies/speed_sampling.py [--checkpoint fmnist-text] [--images 10,40,100,200,400]
    python studies/speed_sampling.py --products
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from t2i import Pipeline
from t2i.utils.runtime import seconds_per_call

# fmnist-text's products when 200 images are sampled with guidance: 400 rows of 16 tokens, by
# the attention's qkv (128 x 384), the MLP (128 x 512, 512 x 128) and the projections (128 x 128).
PRODUCTS = ((6400, 128, 384), (6400, 128, 512), (6400, 512, 128), (6400, 128, 128), (1024, 1024, 1024))


def product_rate(m: int, k: int, n: int, dtype: torch.dtype, seconds: float = 0.3) -> float:
    """GFLOP/s of an (m x k) by (k x n) product, repeated for `seconds` after one call."""
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    return 2 * m * k * n / seconds_per_call(lambda: a @ b, seconds) / 1e9


def sampling_rates(checkpoint: str, sizes: list[int], rounds: int = 3) -> None:
    """Uncompiled against compiled img/s per call size, printed as they are measured."""
    eager = Pipeline.from_pretrained(checkpoint)
    compiled = Pipeline.from_pretrained(checkpoint, compile=True)
    prompts = eager.default_prompts()
    start = time.perf_counter()
    for size in sizes:  # compile for every batch size first: the timed calls find them ready
        compiled(prompts, num_per_prompt=max(1, size // len(prompts)))
    print(f"compiling (and the first calls): {time.perf_counter() - start:.1f} s; precision {eager.dtype}")
    for size in sizes:
        per_prompt = max(1, size // len(prompts))
        rates = {"uncompiled": [], "compiled": []}
        for _ in range(rounds):
            for name, pipe in (("uncompiled", eager), ("compiled", compiled)):
                start = time.perf_counter()
                pipe(prompts, num_per_prompt=per_prompt)
                rates[name].append(per_prompt * len(prompts) / (time.perf_counter() - start))
        print(f"{per_prompt * len(prompts)} images a call: " + ", ".join(
            f"{name} {statistics.median(r):.0f} img/s ({', '.join(f'{v:.0f}' for v in r)})"
            for name, r in rates.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="fmnist-text")
    ap.add_argument("--images", default="10,40,100,200,400", help="images per call, comma-separated")
    ap.add_argument("--products", action="store_true", help="instead: the products' GFLOP/s")
    args = ap.parse_args()
    if args.products:
        for m, k, n in PRODUCTS:
            print(f"{m} x {k} by {k} x {n}: fp32 {product_rate(m, k, n, torch.float32):.0f} GFLOP/s, "
                  f"bf16 {product_rate(m, k, n, torch.bfloat16):.0f} GFLOP/s")
        return
    sampling_rates(args.checkpoint, [int(v) for v in args.images.split(",")])


if __name__ == "__main__":
    main()
