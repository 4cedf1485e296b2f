"""The speed study's step of one DiT alone (docs/studies/speed.md): forward and backward of a
squared error on random inputs, in fp32, bf16 autocast, bf16 weights and activations (no casts
at all) and, with --compile, torch.compile in fp32 and bf16 autocast. Prints the median ms of
three blocks of 10 steps per arm, the arms interleaved so that a machine that speeds up or slows
down meanwhile weighs on all alike; the first call of each compiled arm is timed apart.

    python studies/speed_step.py [--preset shapes] [--batch 32] [--tokens 12] [--compile]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from t2i.models.dit import DiT
from t2i.presets import get_preset

TEXT_DIM = 384  # all-MiniLM-L6-v2's width


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="shapes")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=12, help="text tokens attended to (3 of them padding)")
    ap.add_argument("--compile", action="store_true", help="also the torch.compile arms")
    args = ap.parse_args()
    torch.manual_seed(0)
    cfg = get_preset(args.preset)
    shape = (cfg.data.channels, cfg.data.image_size, cfg.data.image_size)
    model = DiT(cfg.model, shape, TEXT_DIM)
    for p in model.parameters():  # no zero-initialised layer: every matrix product does work
        torch.nn.init.normal_(p, std=0.02)
    B = args.batch
    x, t = torch.randn(B, *shape), torch.rand(B)
    tokens, mask = torch.randn(B, args.tokens, TEXT_DIM), torch.ones(B, args.tokens, dtype=torch.bool)
    mask[:, -3:] = False

    def step(net, autocast: bool, dtype=torch.float32) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = net(x.to(dtype), t, tokens.to(dtype), mask)
        (out.float() - x).pow(2).mean().backward()
        for p in net.parameters():
            p.grad = None

    arms = {"fp32": lambda: step(model, False), "bf16 autocast": lambda: step(model, True)}
    pure = copy.deepcopy(model).to(torch.bfloat16)
    arms["bf16 weights and activations"] = lambda: step(pure, False, torch.bfloat16)
    if args.compile:
        compiled = torch.compile(model)
        for name, autocast in (("compiled fp32", False), ("compiled bf16 autocast", True)):
            start = time.perf_counter()
            step(compiled, autocast)
            step(compiled, autocast)
            print(f"{name}: first two calls {time.perf_counter() - start:.1f} s")
            arms[name] = lambda autocast=autocast: step(compiled, autocast)
    times = {name: [] for name in arms}
    for _ in range(3):
        for name, run in arms.items():
            run()
            run()  # warm-up: kernel selection, weight packing
            start = time.perf_counter()
            for _ in range(10):
                run()
            times[name].append((time.perf_counter() - start) / 10 * 1e3)
    for name, ms in times.items():
        print(f"{args.preset} batch {B} {name}: {statistics.median(ms):.1f} ms a step "
              f"({B / statistics.median(ms) * 1e3:.0f} img/s; blocks {', '.join(f'{m:.1f}' for m in ms)})")


if __name__ == "__main__":
    main()
