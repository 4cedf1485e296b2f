"""Checkpoints: a directory of safetensors + JSON, written atomically; never pickles.

    step_0001000/
      config.json          the full Config: a checkpoint alone is enough to sample
      model.safetensors    trained weights (DiT + trainable text encoder)
      ema.safetensors      EMA weights, what sampling uses
      state.safetensors    optimizer moments and RNG state (training only)
      state.json           step, elapsed time, optimizer hyper-parameters, data cursor
      manifest.json        size and SHA-256 of each file above, written last

A run directory holds `checkpoints/step_*/` and a `checkpoints/latest` file naming the newest.
An exported model (`export_model`) is a checkpoint with the EMA weights alone, in 16 bits, and
the step and training time; the models shipped inside the package (assets/models/NAME) are
exported ones, and a name that is not a path resolves to them.
Each checkpoint is written to a temporary directory and renamed into place, so a crash leaves
either the old set or the new one, never a half-written checkpoint that looks complete.

Every load verifies: the files against the manifest (older checkpoints without one: the JSON
parses and the safetensors headers read), the config through its typed parse, the weights for
finite values and for a fit with the model. A run directory resolves to its newest intact
checkpoint, naming the damaged ones it skipped; a checkpoint that cannot be used is a
`CheckpointError` saying which file and why. A save killed half-way leaves a `.step_*.part-*`
folder, which `remove_stale_parts` clears at the next start of that run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any, Collection, Optional

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .config import Config, ConfigError
from .utils.fsutil import atomic_directory, write_text_atomic

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
LATEST = "latest"
MANIFEST = "manifest.json"
SHIPPED = Path(__file__).parent / "assets" / "models"


def run_directory(ckpt: Path) -> Path:
    """Where a checkpoint's reports and figures go: its run directory (RUN/checkpoints/step_N),
    or runs/NAME for a shipped model (the package's folder may be read-only)."""
    ckpt = Path(ckpt)
    return Path("runs") / ckpt.name if ckpt.parent == SHIPPED else ckpt.parent.parent


def shipped_models() -> list[str]:
    """The names of the models shipped inside the package (`t2i sample --checkpoint NAME`)."""
    if not SHIPPED.is_dir():
        return []
    return sorted(p.name for p in SHIPPED.iterdir() if (p / "config.json").is_file())


class CheckpointError(ValueError):
    """A checkpoint is missing, damaged, or does not fit what loads it."""


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
                    state: dict, keep_last: int = 0, keep_every: int = 0) -> Path:
    """Write checkpoint `step` under run_dir/checkpoints atomically, point `latest` at it and
    delete all but the newest `keep_last` (0 keeps all) and those whose step is a multiple of
    `keep_every` (0: none) — never the one just written."""
    if keep_last < 0:
        raise ValueError(f"keep_last must be >= 0 (0 keeps every checkpoint), got {keep_last}")
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
        _write_manifest(tmp)
    write_text_atomic(root / LATEST, final.name)
    if keep_last:
        for old in sorted(root.glob("step_*"))[:-keep_last]:
            periodic = keep_every and int(old.name.split("_")[1]) % keep_every == 0
            if old != final and not periodic:
                shutil.rmtree(old)
    return final


def _write_manifest(folder: Path) -> None:
    """manifest.json: the size and SHA-256 of every file in `folder`, written last."""
    files = {f.name: {"bytes": f.stat().st_size, "sha256": _sha256(f)} for f in sorted(folder.iterdir())}
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=2))


def export_model(ckpt: Path, out: Path, extras: Optional[dict[str, str]] = None,
                 dtype: torch.dtype = torch.float16) -> Path:
    """A sampling-only copy of a checkpoint in `out` (replaced atomically): its config, the EMA
    weights in `dtype` (16 bits halve the size; sampling computes in the precision it picks),
    the step and training time it was trained for, and `extras` (file name -> text, e.g. an
    evaluation report and a README); a manifest covers them all."""
    state, _ = load_training_state(ckpt)
    ema = {k: v.to(dtype) if v.is_floating_point() else v for k, v in load_weights(ckpt, "ema").items()}
    with atomic_directory(Path(out)) as tmp:
        (tmp / "config.json").write_text((Path(ckpt) / "config.json").read_text())
        save_file(_cpu(ema), tmp / "ema.safetensors")
        (tmp / "state.json").write_text(json.dumps({"step": state["step"], "elapsed": state["elapsed"]}, indent=2))
        for name, text in (extras or {}).items():
            (tmp / name).write_text(text)
        _write_manifest(tmp)
    return Path(out)


def remove_stale_parts(run_dir: Path) -> list[Path]:
    """Delete what saves killed half-way left under run_dir/checkpoints (`.step_*.part-*`,
    `.step_*.old-*`); returns what was removed."""
    root = Path(run_dir) / CHECKPOINTS
    stale = sorted(root.glob(".step_*.part-*")) + sorted(root.glob(".step_*.old-*"))
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    if stale:
        log.info("removed %d unfinished checkpoint folder(s) in %s", len(stale), root)
    return stale


def _cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def checkpoint_problems(ckpt: Path) -> list[str]:
    """What is wrong with a checkpoint directory (empty: nothing found)."""
    ckpt = Path(ckpt)
    if not (ckpt / "config.json").is_file():
        return ["no config.json"]
    manifest = ckpt / MANIFEST
    if manifest.is_file():
        try:
            files = read_json(manifest)["files"]
        except (ValueError, KeyError, TypeError):
            return [f"{MANIFEST} is damaged"]
        for name, want in files.items():
            f = ckpt / name
            if not f.is_file():
                return [f"{name} is missing"]
            if f.stat().st_size != want["bytes"] or _sha256(f) != want["sha256"]:
                return [f"{name} is damaged (size or checksum differs from {MANIFEST})"]
    problems = []
    for name in ("config.json", "state.json"):  # older checkpoints have no manifest: parse
        if (ckpt / name).is_file():
            try:
                read_json(ckpt / name)
            except ValueError as e:
                problems.append(str(e) if str(e).startswith(name) else f"{name} is not valid JSON ({e})")
    for f in sorted(ckpt.glob("*.safetensors")):
        try:
            with safe_open(str(f), "pt") as st:
                st.keys()
        except (SafetensorError, OSError) as e:
            problems.append(f"{f.name} is damaged ({e})")
    if not problems:
        try:
            load_config(ckpt)
        except CheckpointError as e:
            problems.append(str(e))
    return problems


def resolve_checkpoint(path: str | Path, latest: bool = True) -> Path:
    """A verified checkpoint directory from itself, or from a run directory (or its
    checkpoints/ directory): the one `latest` names or, if that one is damaged, the newest
    intact one (the damaged ones are logged). A name that is not a path is a shipped model's."""
    if not Path(path).exists() and str(path) in shipped_models():
        path = SHIPPED / str(path)
    path = Path(path)
    if (path / "config.json").is_file() or (path / MANIFEST).is_file():
        problems = checkpoint_problems(path)
        if problems:
            raise CheckpointError(f"checkpoint {path}: " + "; ".join(problems))
        return path
    for root in (path / CHECKPOINTS, path):
        pointer = root / LATEST
        if not (latest and pointer.is_file()):
            continue
        named = root / pointer.read_text().strip()
        candidates = [named] + [c for c in sorted(root.glob("step_*"), reverse=True) if c != named]
        damaged = []
        for ckpt in candidates:
            problems = checkpoint_problems(ckpt)
            if not problems:
                for bad in damaged:
                    log.warning("skipping damaged checkpoint %s", bad)
                return ckpt
            damaged.append(f"{ckpt.name}: {'; '.join(problems)}")
        raise CheckpointError(f"no intact checkpoint in {root}: " + "; ".join(damaged))
    shipped = ", ".join(shipped_models()) or "none"
    raise FileNotFoundError(f"{path} is neither a checkpoint (no config.json) nor a run "
                            f"directory with {CHECKPOINTS}/{LATEST}, nor the name of a shipped "
                            f"model ({shipped})")


MAX_JSON_BYTES = 16 << 20  # a checkpoint's JSON files are kilobytes; far more is not one of them


def read_json(path: Path):
    """A checkpoint's small JSON file, parsed; a ValueError (not a huge read or a RecursionError)
    for one too large or nested too deeply."""
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise ValueError(f"{path.name} is {size:,} bytes: not a t2i checkpoint's (a few kB)")
    try:
        return json.loads(path.read_text())
    except RecursionError:
        raise ValueError(f"{path.name} is nested too deeply to be a t2i checkpoint's") from None


def load_config(ckpt: Path) -> Config:
    path = Path(ckpt) / "config.json"
    try:
        return Config.from_dict(read_json(path))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing: a checkpoint carries its config") from None
    except (ValueError, TypeError) as e:  # ConfigError and JSON errors are ValueErrors
        raise CheckpointError(f"{path}: {e}") from None


def load_weights(ckpt: Path, which: str = "ema") -> dict[str, torch.Tensor]:
    path = Path(ckpt) / f"{which}.safetensors"
    try:
        weights = load_file(path)
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path} cannot be read ({e})") from None
    bad = [k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{path} holds non-finite weights ({', '.join(bad[:3])}"
                              f"{', ...' if len(bad) > 3 else ''}): the run that wrote it diverged")
    # Checkpoints written before the U-Net joined called the backbone "dit".
    return {("backbone." + k[4:] if k.startswith("dit.") else k): v for k, v in weights.items()}


def held_parameters(ckpt: Path, which: str = "ema") -> int:
    """How many numbers `which` weights of a checkpoint hold, from the safetensors header alone
    (nothing loaded; the library refuses headers whose shapes or offsets do not fit the file)."""
    path = Path(ckpt) / f"{which}.safetensors"
    try:
        with safe_open(str(path), "pt") as st:
            return sum(math.prod(st.get_slice(k).get_shape()) for k in st.keys())
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path} cannot be read ({e})") from None


def load_into(module: torch.nn.Module, ckpt: Path, which: str = "ema",
              allow_missing: tuple[str, ...] = ()) -> None:
    """Load `which` weights of a checkpoint into `module`, or say why they do not fit.
    Parameters whose names contain one of `allow_missing` may be absent from the checkpoint
    (they keep their initial values); anything else missing or unexpected is an error."""
    where = f"{Path(ckpt) / which}.safetensors does not fit this model"
    try:
        missing, unexpected = module.load_state_dict(load_weights(ckpt, which), strict=False)
    except RuntimeError as e:  # shapes that differ
        detail = " ".join(line.strip() for line in str(e).splitlines()[1:3])
        raise CheckpointError(f"{where}: {detail[:500]}") from None
    missing = [k for k in missing if not any(part in k for part in allow_missing)]
    if missing or unexpected:
        raise CheckpointError(f"{where}: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}")


def load_training_state(ckpt: Path) -> tuple[dict, Optional[dict[str, torch.Tensor]]]:
    ckpt = Path(ckpt)
    tensors = load_file(ckpt / "state.safetensors") if (ckpt / "state.safetensors").is_file() else None
    try:
        state = read_json(ckpt / "state.json")
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{ckpt / 'state.json'} cannot be read ({e})") from None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise CheckpointError(f"{ckpt / 'state.json'} does not hold the step it was written at")
    return state, tensors


def pack_training_state(optimizer: torch.optim.Optimizer, order, step: int, elapsed: float,
                        precision: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """What resuming exactly needs besides the weights: optimizer moments, the global torch RNG,
    the data order (an `EpochSampler`), the step and the training time so far; and, for
    reports only, the precision the steps ran in (`auto` decides per machine, so the config
    alone does not say)."""
    opt_tensors, opt_meta = flatten_optimizer(optimizer.state_dict())
    tensors = {**opt_tensors, "rng.torch": torch.get_rng_state(), "data.perm": order.perm}
    state = {"step": step, "elapsed": elapsed, "cursor": order.cursor, "optimizer": opt_meta,
             "precision": precision}
    return state, tensors


def restore_training_state(ckpt: Path, optimizer: torch.optim.Optimizer, order) -> tuple[int, float]:
    """Load what `pack_training_state` saved into `optimizer`, the RNG and `order`; returns
    (step, elapsed seconds)."""
    state, tensors = load_training_state(ckpt)
    if tensors is None:
        raise CheckpointError(f"{ckpt} holds no training state (an exported model?); cannot resume")
    try:
        optimizer.load_state_dict(unflatten_optimizer(tensors, state["optimizer"]))
        torch.set_rng_state(tensors["rng.torch"])
        order.load(tensors["data.perm"], state["cursor"])
        elapsed = float(state["elapsed"])
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{ckpt}: the training state does not fit this run ({e})") from None
    return state["step"], elapsed


SHAPING = ("model", "text", "data", "vae")  # the sections a checkpoint's weights and data depend on
# Where this machine keeps files, not what they are: a resumed run takes them from its own config.
LOCAL = ("data_dir", "cache_dir", "font")  # data fields


def resumed_config(config: Config, ckpt: Path, explicit: Collection[str] = ()) -> Config:
    """What a resumed run trains: the checkpoint's model, text, data and VAE (they shape the
    weights and the data), with this run's objective, training and sampling settings — and the
    checkpoint's train.init where this run names none (a distillation's teacher). A field of
    those four sections that the command line sets (`explicit`) and the checkpoint contradicts
    is an error naming it; any other difference (a preset's newer default) is a warning naming
    each field and both values."""
    saved = load_config(ckpt)
    if saved.train.init and not config.train.init:
        log.info("resuming %s: train.init=%s (its teacher) from the checkpoint", ckpt, saved.train.init)
        config = config.override([f"train.init={saved.train.init}"])
    differ = [(f"{section}.{name}", old, new)
              for section in SHAPING
              for (name, old), new in zip(dataclasses.asdict(getattr(saved, section)).items(),
                                          dataclasses.asdict(getattr(config, section)).values())
              if old != new and not (section == "data" and name in LOCAL)]
    contradicted = [d for d in differ if d[0] in explicit]
    if contradicted:
        raise ConfigError(f"--resume {ckpt}: the checkpoint was trained with "
                          + ", ".join(f"{k}={old!r} (not {new!r})" for k, old, new in contradicted)
                          + "; a resumed run keeps the checkpoint's model, text, data and vae: drop "
                          "those overrides, or train a new run with another --out")
    for key, old, new in differ:
        log.warning("resuming %s: %s=%r from the checkpoint (this run's config says %r)", ckpt, key, old, new)
    if differ:
        data = dataclasses.replace(saved.data, **{name: getattr(config.data, name) for name in LOCAL})
        config = dataclasses.replace(config, model=saved.model, text=saved.text, data=data, vae=saved.vae)
    return config
