"""Where a training step's time goes (`t2i bench --profile`): torch.profiler over a few steps,
split into the phases the trainer names (`record_function("t2i.*")` in `Trainer.train_step`) and
the operators that cost the most.

A step's phases: `data` (drawing the batch: `data.images`, the images or latents; `data.text`,
the captions drawn and looked up or tokenized), `forward` (noise, times, the model and the loss),
`backward`, `optimizer` (unscale, clip, the fused AdamW step, zeroing) and `ema`; `other` is what
the step spends outside them (the LR, Python between phases). The profiler's own bookkeeping
slows every operator a little: the phases are shares of a profiled step, and the unprofiled
img/s of `t2i bench` is the speed.

The profile also says how fast a step could be: every matrix product of one step (the linear
layers' forward and backward; attention's own are inside its fused kernel) is recorded with its
shapes, strides and dtypes and replayed alone, unprofiled. Their time is the floor of a step that
did nothing else, and their FLOPs over it the matmul speed these shapes reach on this machine: the
most MFU a step of this model can have, where `t2i bench` measures the peak on large products.
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from pathlib import Path
from typing import Optional

import torch
from torch.profiler import ProfilerActivity, profile

from ..utils.runtime import seconds_per_call
from .bench import step_seconds
from .trainer import Trainer

PHASES = ("data", "data.images", "data.text", "forward", "backward", "optimizer", "ema")
TOP_LEVEL = ("data", "forward", "backward", "optimizer", "ema")
PRODUCTS = {"aten::mm": 0, "aten::bmm": 0, "aten::addmm": 1, "aten::baddbmm": 1}  # operands after the added term
DTYPES = {"float": torch.float32, "c10::BFloat16": torch.bfloat16, "c10::Half": torch.float16,
          "double": torch.float64}


def profile_training(config, steps: int = 20, warmup: int = 3, top: int = 15,
                     trace: Optional[Path] = None) -> dict:
    """Profile `steps` training steps of `config` after `warmup` unprofiled ones: ms per step
    of each phase and of `other`, and the `top` operators by their own time (children
    excluded) per step. `trace`: also write a Chrome trace (chrome://tracing, Perfetto) there."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, tmp, progress=False)
    for _ in range(warmup):
        trainer.train_step()
    unprofiled_ms = step_seconds(trainer, steps) * 1e3
    cuda = trainer.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        step_ms = step_seconds(trainer, steps) * 1e3
    if trace is not None:
        prof.export_chrome_trace(str(trace))
    events = prof.key_averages()
    phases = {e.key[4:]: e.cpu_time_total / 1e3 / steps for e in events
              if e.key.startswith("t2i.") and e.key[4:] in PHASES}
    phases["other"] = max(0.0, step_ms - sum(phases.get(p, 0.0) for p in TOP_LEVEL))
    own = "self_device_time_total" if cuda else "self_cpu_time_total"
    ops = sorted((e for e in events if not e.key.startswith("t2i.")), key=lambda e: getattr(e, own),
                 reverse=True)[:top]
    return {"steps": steps, "step_ms": step_ms, "unprofiled_step_ms": unprofiled_ms,
            "products": product_floor(trainer),
            "phases_ms": {p: phases.get(p, 0.0) for p in (*PHASES, "other")},
            "top_ops": [{"op": e.key, "ms_per_step": getattr(e, own) / 1e3 / steps,
                         "calls_per_step": e.count / steps} for e in ops],
            "time_measure": "device (CUDA) time" if cuda else "CPU time"}


def product_floor(trainer: Trainer, seconds: float = 0.02) -> dict:
    """The matrix products of one training step, each replayed alone (fresh operands of the
    recorded shapes, strides and dtype; at least `seconds` and 3 calls each): ms and GFLOP a
    step, and how many calls of how many distinct kinds."""
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        trainer.train_step()
    calls = Counter()
    for e in prof.events():
        if e.name in PRODUCTS:
            tensors = [(tuple(shape), tuple(stride), dtype) for shape, stride, dtype in
                       zip(e.input_shapes, e.structured_input_strides, e.input_dtypes) if shape]
            calls[e.name, tuple(tensors[:PRODUCTS[e.name] + 2])] += 1  # not a compiled graph's out=
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else None
    total_s = flops = 0.0
    for (name, tensors), count in calls.items():
        operands = [torch.empty_strided(shape, stride, dtype=DTYPES[dtype], device=trainer.device).normal_()
                    for shape, stride, dtype in tensors]
        a, b = (shape for shape, _, _ in tensors[PRODUCTS[name]:])
        flops += count * 2 * math.prod(a) * b[-1]  # (batch) x m x k, times n
        op = getattr(torch, name[6:])
        total_s += count * seconds_per_call(lambda: op(*operands), seconds, min_calls=3, sync=sync)
    return {"ms": total_s * 1e3, "GFLOP": flops / 1e9, "calls": sum(calls.values()), "kinds": len(calls)}


def format_profile(report: dict) -> str:
    """The profile as a table: phases with their share of the step, then the top operators."""
    step = report["step_ms"]
    products, unprofiled = report["products"], report["unprofiled_step_ms"]
    lines = [f"training step: {unprofiled:.1f} ms unprofiled, {step:.1f} ms profiled (means of "
             f"{report['steps']})",
             f"its {products['calls']} matrix products alone ({products['kinds']} kinds, replayed "
             f"unprofiled): {products['ms']:.1f} ms, {products['GFLOP']:.2f} GFLOP at "
             f"{products['GFLOP'] / max(products['ms'], 1e-9) * 1e3:.0f} GFLOP/s -- "
             f"{products['ms'] / unprofiled:.0%} of the step; the rest is everything else",
             "", f"{'phase':<14} {'ms/step':>8} {'share':>6}"]
    for phase, ms in report["phases_ms"].items():
        indent = "  " if phase.startswith("data.") else ""
        lines.append(f"{indent + phase:<14} {ms:8.2f} {ms / step:6.1%}")
    lines += ["", f"top operators by own {report['time_measure']}:",
              f"{'operator':<56} {'ms/step':>8} {'share':>6} {'calls':>6}"]
    for op in report["top_ops"]:
        lines.append(f"{op['op'][:56]:<56} {op['ms_per_step']:8.2f} {op['ms_per_step'] / step:6.1%} "
                     f"{op['calls_per_step']:6.0f}")
    return "\n".join(lines)
