"""Where a training run reports: a progress bar over its budget, and metrics and images to
TensorBoard (always) and Weights & Biases (optional)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter
from tqdm.auto import tqdm

from ..config import Config


class BudgetBar:
    """A tqdm bar over a run's budget: training seconds with a time budget, else steps."""

    def __init__(self, cfg, step: int, elapsed: float, enabled: bool = True):
        self.timed = cfg.max_minutes > 0
        self.bar = tqdm(total=round(60 * cfg.max_minutes) if self.timed else cfg.steps,
                        initial=round(elapsed) if self.timed else step,
                        unit="s" if self.timed else "step", disable=not enabled, dynamic_ncols=True)

    def advance(self, elapsed: float) -> None:
        """After one step that brought the training time to `elapsed` seconds."""
        bar = self.bar
        bar.update((min(round(elapsed), bar.total) - bar.n) if self.timed else 1)

    def set_postfix(self, **kwargs) -> None:
        self.bar.set_postfix(**kwargs)

    def close(self) -> None:
        self.bar.close()


class Tracker:
    """Where metrics and images go: TensorBoard (`RUN/tb`) always, and Weights & Biases
    too with `train.wandb=true` (optional: `pip install wandb`; nothing else needs it)."""

    def __init__(self, out_dir: Path, config: Config, step: int):
        self.tb = SummaryWriter(str(out_dir / "tb"), purge_step=step or None)
        self.run = None
        if config.train.wandb:
            try:
                import wandb
            except ImportError:
                raise ImportError("train.wandb=true needs wandb: pip install wandb") from None
            # One W&B run per run directory, continued on resume.
            self.run = wandb.init(project=config.train.wandb_project, name=out_dir.name,
                                  id=f"t2i-{out_dir.resolve().name}", resume="allow",
                                  dir=str(out_dir), config=config.to_dict())

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.tb.add_scalar(tag, value, step)
        if self.run is not None:
            self.run.log({tag: value}, step=step)

    def image(self, tag: str, image, step: int) -> None:
        """A PIL image."""
        self.tb.add_image(tag, np.asarray(image.convert("RGB")), step, dataformats="HWC")
        if self.run is not None:
            import wandb

            self.run.log({tag: wandb.Image(image)}, step=step)

    def close(self) -> None:
        self.tb.close()
        if self.run is not None:
            self.run.finish()
