"""Training: the one loop (`loop`: budget, schedule, checkpoints, resume, signals) and the
trainers on it (`trainer` for the denoiser, `vae` for our autoencoder), with what they need —
the trainable networks (`denoiser`), teacher paths for few-step students (`trajectories`),
progress and TensorBoard (`progress`, `monitor`) — and the throughput benchmark (`bench`).
"""

from .bench import benchmark, find_batch
from .loop import Diverged, Interrupted, TrainingLoop
from .trainer import Trainer
from .vae import VAETrainer

__all__ = ["Diverged", "Interrupted", "Trainer", "TrainingLoop", "VAETrainer", "benchmark", "find_batch"]
