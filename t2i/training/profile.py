"""Where a training step's time goes (`t2i bench --profile`): torch.profiler over a few steps,
split into the phases the trainer names (`record_function("t2i.*")` in `Trainer.train_step`) and
the operators that cost the most.

A step's phases: `data` (drawing the batch: `data.images`, the images or latents; `data.text`,
the captions drawn and looked up or tokenized), `forward` (noise, times, the model and the loss),
`backward`, `optimizer` (unscale, clip, the fused AdamW step, zeroing) and `ema`; `other` is what
the step spends outside them (the LR, Python between phases). The profiler's own bookkeeping
slows every operator a little: the phases are shares of a profiled step, and the unprofiled
img/s of `t2i bench` is the speed.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Optional

import torch
from torch.profiler import ProfilerActivity, profile

from .trainer import Trainer

PHASES = ("data", "data.images", "data.text", "forward", "backward", "optimizer", "ema")
TOP_LEVEL = ("data", "forward", "backward", "optimizer", "ema")


def profile_training(config, steps: int = 20, warmup: int = 3, top: int = 15,
                     trace: Optional[Path] = None) -> dict:
    """Profile `steps` training steps of `config` after `warmup` unprofiled ones: ms per step
    of each phase and of `other`, and the `top` operators by their own time (children
    excluded) per step. `trace`: also write a Chrome trace (chrome://tracing, Perfetto) there."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, tmp, progress=False)
    for _ in range(warmup):
        trainer.train_step()
    cuda = trainer.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step()
        if cuda:
            torch.cuda.synchronize(trainer.device)
        step_ms = (time.perf_counter() - start) * 1e3 / steps
    if trace is not None:
        prof.export_chrome_trace(str(trace))
    events = prof.key_averages()
    phases = {e.key[4:]: e.cpu_time_total / 1e3 / steps for e in events
              if e.key.startswith("t2i.") and e.key[4:] in PHASES}
    phases["other"] = max(0.0, step_ms - sum(phases.get(p, 0.0) for p in TOP_LEVEL))
    own = "self_device_time_total" if cuda else "self_cpu_time_total"
    ops = sorted((e for e in events if not e.key.startswith("t2i.")), key=lambda e: getattr(e, own),
                 reverse=True)[:top]
    return {"steps": steps, "step_ms": step_ms,
            "phases_ms": {p: phases.get(p, 0.0) for p in (*PHASES, "other")},
            "top_ops": [{"op": e.key, "ms_per_step": getattr(e, own) / 1e3 / steps,
                         "calls_per_step": e.count / steps} for e in ops],
            "time_measure": "device (CUDA) time" if cuda else "CPU time"}


def format_profile(report: dict) -> str:
    """The profile as a table: phases with their share of the step, then the top operators."""
    step = report["step_ms"]
    lines = [f"profiled training step: {step:.1f} ms (mean of {report['steps']}; the profiler "
             "slows it a little)", f"{'phase':<14} {'ms/step':>8} {'share':>6}"]
    for phase, ms in report["phases_ms"].items():
        indent = "  " if phase.startswith("data.") else ""
        lines.append(f"{indent + phase:<14} {ms:8.2f} {ms / step:6.1%}")
    lines += ["", f"top operators by own {report['time_measure']}:",
              f"{'operator':<56} {'ms/step':>8} {'share':>6} {'calls':>6}"]
    for op in report["top_ops"]:
        lines.append(f"{op['op'][:56]:<56} {op['ms_per_step']:8.2f} {op['ms_per_step'] / step:6.1%} "
                     f"{op['calls_per_step']:6.0f}")
    return "\n".join(lines)
