"""Checkpoints: a directory of safetensors + JSON, written atomically; never pickles.

    step_0001000/
      config.json          the full Config: a checkpoint alone is enough to sample
      model.safetensors    trained weights (DiT + trainable text encoder)
      ema.safetensors      EMA weights, what sampling uses
      state.safetensors    optimizer moments and RNG state (training only)
      state.json           step, elapsed time, optimizer hyper-parameters, data cursor

A run directory holds `checkpoints/step_*/` and a `checkpoints/latest` file naming the newest.
Each checkpoint is written to a temporary directory and renamed into place, so a crash leaves
either the old set or the new one, never a half-written checkpoint that looks complete.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors.torch import load_file, save_file

from .config import Config
from .fsutil import atomic_directory, write_text_atomic

CHECKPOINTS = "checkpoints"
LATEST = "latest"


def flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state_dict into tensors (for safetensors) and JSON-able metadata."""
    tensors, scalars = {}, {}
    for pid, entries in state["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{pid}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = value
    for key, value in meta["scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(run_dir: Path, step: int, config: Config, model: dict[str, torch.Tensor],
                    ema: dict[str, torch.Tensor], extra_tensors: dict[str, torch.Tensor],
                    state: dict, keep_last: int = 0) -> Path:
    """Write checkpoint `step` under run_dir/checkpoints atomically, point `latest` at it and
    delete all but the newest `keep_last` (0 keeps all)."""
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:07d}"
    with atomic_directory(final) as tmp:
        (tmp / "config.json").write_text(config.to_json())
        save_file(_cpu(model), tmp / "model.safetensors")
        save_file(_cpu(ema), tmp / "ema.safetensors")
        if extra_tensors:
            save_file(_cpu(extra_tensors), tmp / "state.safetensors")
        (tmp / "state.json").write_text(json.dumps(state, indent=2))
    write_text_atomic(root / LATEST, final.name)
    if keep_last:
        for old in sorted(root.glob("step_*"))[:-keep_last]:
            shutil.rmtree(old)
    return final


def _cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}


def resolve_checkpoint(path: str | Path, latest: bool = True) -> Path:
    """A checkpoint directory from itself, a run directory (its latest checkpoint) or a
    run's checkpoints/ directory."""
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    for root in (path / CHECKPOINTS, path):
        pointer = root / LATEST
        if latest and pointer.is_file():
            ckpt = root / pointer.read_text().strip()
            if (ckpt / "config.json").is_file():
                return ckpt
    raise FileNotFoundError(f"{path} is neither a checkpoint (no config.json) nor a run "
                            f"directory with {CHECKPOINTS}/{LATEST}")


def load_config(ckpt: Path) -> Config:
    return Config.from_json((Path(ckpt) / "config.json").read_text())


def load_weights(ckpt: Path, which: str = "ema") -> dict[str, torch.Tensor]:
    weights = load_file(Path(ckpt) / f"{which}.safetensors")
    # Checkpoints written before the U-Net joined called the backbone "dit".
    return {("backbone." + k[4:] if k.startswith("dit.") else k): v for k, v in weights.items()}


def load_training_state(ckpt: Path) -> tuple[dict, Optional[dict[str, torch.Tensor]]]:
    ckpt = Path(ckpt)
    tensors = load_file(ckpt / "state.safetensors") if (ckpt / "state.safetensors").is_file() else None
    return json.loads((ckpt / "state.json").read_text()), tensors


def pack_training_state(optimizer: torch.optim.Optimizer, order, step: int,
                        elapsed: float) -> tuple[dict, dict[str, torch.Tensor]]:
    """What resuming exactly needs besides the weights: optimizer moments, the global torch RNG,
    the data order (an `EpochSampler`), the step and the training time so far."""
    opt_tensors, opt_meta = flatten_optimizer(optimizer.state_dict())
    tensors = {**opt_tensors, "rng.torch": torch.get_rng_state(), "data.perm": order.perm}
    state = {"step": step, "elapsed": elapsed, "cursor": order.cursor, "optimizer": opt_meta}
    return state, tensors


def restore_training_state(ckpt: Path, optimizer: torch.optim.Optimizer, order) -> tuple[int, float]:
    """Load what `pack_training_state` saved into `optimizer`, the RNG and `order`; returns
    (step, elapsed seconds)."""
    state, tensors = load_training_state(ckpt)
    if tensors is None:
        raise ValueError(f"{ckpt} holds no training state (an exported model?); cannot resume")
    optimizer.load_state_dict(unflatten_optimizer(tensors, state["optimizer"]))
    torch.set_rng_state(tensors["rng.torch"])
    order.load(tensors["data.perm"], state["cursor"])
    return state["step"], state["elapsed"]
