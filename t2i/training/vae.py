"""Training our own VAE: a small diffusers `AutoencoderKL` fitted with MSE + kl_weight * KL on the
shared loop (loop.py: budget, LR schedule, gradient accumulation and clipping, autocast,
TensorBoard and W&B, checkpoints, resume), then exported as a folder that `codecs.load_codec`
(and `AutoencoderKL.from_pretrained`) loads, with the latent scale measured from the data.

One process only: the VAE is small and trains in minutes on a CPU, so it has no DDP path.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from ..checkpoint import load_into
from ..codecs import AutoencoderCodec, autoencoder_class, reconstruction_psnr, resize
from ..config import Config
from ..data import load_dataset, unseen_split
from ..sections import VAEConfig
from ..utils.images import make_grid
from ..utils.runtime import autocast, resolve_device
from .loop import TrainingLoop, resume_checkpoint
from .progress import Tracker

log = logging.getLogger(__name__)

INFO_FILE = "t2i_vae.json"  # written beside our VAE's weights: scale, PSNR, how it was trained


def build_autoencoder(vc: VAEConfig, channels_in: int, resolution: int):
    """A small AutoencoderKL: ResNet blocks per level, self-attention in the middle block."""
    AutoencoderKL = autoencoder_class()
    widths = tuple(int(c) for c in vc.channels.split(","))
    groups = math.gcd(*widths, 32)
    return AutoencoderKL(in_channels=channels_in, out_channels=channels_in,
                         down_block_types=("DownEncoderBlock2D",) * len(widths),
                         up_block_types=("UpDecoderBlock2D",) * len(widths),
                         block_out_channels=widths, layers_per_block=vc.layers_per_block,
                         latent_channels=vc.latent_channels, norm_num_groups=groups,
                         sample_size=resolution)


def measure_scale(codec: AutoencoderCodec, images: torch.Tensor, batch: int = 500) -> float:
    """1 / std of the unscaled latents of `images`: the factor that makes them unit variance."""
    codec.scale = 1.0
    latents = torch.cat([codec.encode(images[i:i + batch]).cpu() for i in range(0, len(images), batch)])
    return 1.0 / latents.std().item()


class VAETrainer(TrainingLoop):
    """`VAETrainer(config, out_dir).train()` fits `build_autoencoder(config.vae)` to the
    dataset with MSE + kl_weight * KL, then exports `out_dir/vae/` (loadable with
    `AutoencoderKL.from_pretrained`, scaling_factor measured from the data) and `t2i_vae.json`."""

    log_prefix = "vae"
    averaged = ()  # logged as measured at the log step

    def __init__(self, config: Config, out_dir: str | Path, resume: Optional[str] = None,
                 progress: bool = True, eval_images: int = 10_000):
        self.config, self.out_dir, self.progress = config, Path(out_dir), progress
        self.eval_images = eval_images  # test images the final PSNR is measured on
        tc, vc = config.train, config.vae
        torch.manual_seed(tc.seed)
        self.device = resolve_device(tc.device)
        self.rank, self.world, self.is_main = 0, 1, True
        self.data = load_dataset(config.data, "train")
        self.resolution = vc.resolution or 32
        self.vae = build_autoencoder(vc, self.data.shape[0], self.resolution).to(self.device)
        self.init_loop(self.vae, len(self.data))
        ckpt = resume_checkpoint(self.out_dir, resume)
        if ckpt is not None:
            self.resume(ckpt)
        self.shown = self.data.batch(torch.arange(min(10, len(self.data))))[0]  # the reconstruction grids' images
        n = sum(p.numel() for p in self.vae.parameters())
        log.info("VAE: %.2fM parameters, %dx%d -> %s", n / 1e6, self.resolution, self.resolution,
                 "x".join(map(str, self.codec().latent_shape)))

    def codec(self, scale: float = 1.0) -> AutoencoderCodec:
        return AutoencoderCodec(self.vae, scale, self.data.shape, self.resolution)

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = resize(x, (self.resolution, self.resolution))
        posterior = self.vae.encode(x).latent_dist
        recon = self.vae.decode(posterior.sample()).sample
        kl = 0.5 * (posterior.mean.pow(2) + posterior.var - 1 - posterior.logvar).mean()
        return F.mse_loss(recon.float(), x), kl.float()

    def weights(self) -> tuple[dict, dict]:
        weights = self.vae.state_dict()
        return weights, weights  # no EMA: the "ema" file holds the same weights

    def load_weights(self, ckpt: Path) -> None:
        load_into(self.vae, ckpt, "model")

    def forward_backward(self) -> float:
        x, _ = self.data.batch(self.order.next(self.config.train.batch_size))
        with autocast(self.device, self.dtype):
            mse, kl = self.loss(x.to(self.device))
        (mse + self.config.vae.kl_weight * kl).backward()
        self.optimizer.zero_grad(set_to_none=True)
        return mse.item()

    def train_step(self) -> dict:
        tc = self.config.train
        self.set_lr()
        mse_sum, kl_sum = 0.0, 0.0
        for _ in range(tc.grad_accum):
            x, _ = self.data.batch(self.order.next(tc.batch_size))
            with autocast(self.device, self.dtype):
                mse, kl = self.loss(x.to(self.device))
            self.backward(mse + self.config.vae.kl_weight * kl)
            mse_sum, kl_sum = mse_sum + mse.item(), kl_sum + kl.item()
        mse, kl = mse_sum / tc.grad_accum, kl_sum / tc.grad_accum
        psnr = 10 * math.log10(4 / mse) if 0 < mse < math.inf else math.nan  # peak^2 = 2^2
        return {"recon_mse": mse, "kl": kl, "psnr": psnr, **self.optimizer_step(mse + kl)}

    def postfix(self, metrics: dict) -> dict:
        return {"step": self.step, "psnr": f"{metrics['psnr']:.1f}", "kl": f"{metrics['kl']:.2f}"}

    def reconstruction_grid(self, images: torch.Tensor):
        codec = self.codec()
        with torch.no_grad():
            self.vae.eval()
            recon = codec.decode(codec.encode(images)).cpu()
            self.vae.train()
        return make_grid((torch.cat([images, recon]) + 1) / 2, ncol=len(images), scale=2)

    def periodic(self, tracker: Tracker) -> None:
        every = self.config.train.sample_every
        if every and self.step % every == 0:
            tracker.image("vae/reconstructions", self.reconstruction_grid(self.shown), self.step)

    def finish(self, tracker: Tracker, checkpoint: Path) -> Path:
        """Measure the latent scale and the test PSNR, then export `out_dir/vae`; returns it."""
        self.vae.eval()
        codec = self.codec()
        scale = measure_scale(codec, self.data.batch(self.order.perm[:5000])[0])
        codec.scale = scale
        split = unseen_split(self.config.data)
        if split == "test":
            test = load_dataset(self.config.data, "test")
        else:
            log.warning("no test split: the PSNR is measured on training images")
            test = self.data
        test = test.batch(torch.arange(min(self.eval_images, len(test))))[0]
        psnr = reconstruction_psnr(codec, test)
        tracker.image("vae/reconstructions", self.reconstruction_grid(self.shown), self.step)
        return self.export(scale, psnr, split)

    def export(self, scale: float, psnr: float, split: str = "test") -> Path:
        out = self.out_dir / "vae"
        self.vae.register_to_config(scaling_factor=scale)
        self.vae.save_pretrained(str(out))
        # test_psnr_db keeps its name; psnr_split says which images it was measured on.
        info = {"scaling_factor": scale, "test_psnr_db": psnr, "psnr_split": split,
                "resolution": self.resolution,
                "latent_shape": list(self.codec().latent_shape), "dataset": self.config.data.dataset,
                "params": sum(p.numel() for p in self.vae.parameters()), "steps": self.step,
                "train_minutes": self.elapsed / 60, "kl_weight": self.config.vae.kl_weight}
        (out / INFO_FILE).write_text(json.dumps(info, indent=2))
        log.info("VAE: %s PSNR %.2f dB, latent scale %.4f; exported to %s", split, psnr, scale, out)
        return out
