"""t2i: train and run small text-to-image transformers, from a laptop CPU to many GPUs."""

__version__ = "0.1.0"

from .config import PRESETS, Config, get_preset  # noqa: E402
from .pipeline import Pipeline  # noqa: E402
from .train import Trainer  # noqa: E402

__all__ = ["Config", "PRESETS", "Pipeline", "Trainer", "get_preset", "__version__"]
