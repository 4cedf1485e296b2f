"""Latent codecs: the frozen autoencoder between images and the space the DiT works in.

`load_codec(config)` returns an `IdentityCodec` (pixel space) or an `AutoencoderCodec` over a
diffusers `AutoencoderKL` — our own, trained here by `VAETrainer`, or a pretrained one such as
`stabilityai/sd-vae-ft-mse` — and the rest of t2i only calls `encode` / `decode`:

    encode(images [B, C, H, W] in [-1, 1]) -> latents [B, c, h, w], scaled to unit variance
    decode(latents) -> images [B, C, H, W] in [-1, 1] at the dataset's resolution

Images are resized to the VAE's resolution and back, and grayscale is repeated to RGB for an
RGB VAE (and averaged back), so a 28x28 Fashion-MNIST image can go through SD's VAE at 64x64
as the Fashion-MNIST latent-diffusion design does. Encoding takes the posterior mean: the
latents are a deterministic function of the image, which is what makes them cacheable.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from .checkpoint import (load_weights, pack_training_state, resolve_checkpoint,
                         restore_training_state, save_checkpoint)
from .config import Config, VAEConfig
from .data import DataError, EpochSampler, dataset_info, load_dataset
from .images import make_grid
from .runtime import resolve_device

log = logging.getLogger(__name__)

INFO_FILE = "t2i_vae.json"  # written beside our VAE's weights: scale, PSNR, how it was trained


class IdentityCodec:
    """Pixel space: latents are the images themselves, or, with a `resolution` other than the
    dataset's, the images resized to it (the efficient Fashion-MNIST design trains at 16x16) and
    resized back when decoded, so samples and evaluation keep the dataset's size."""

    name = ""
    scale = 1.0

    def __init__(self, image_shape: tuple[int, int, int], resolution: int = 0):
        self.image_shape = tuple(image_shape)
        c, h, w = self.image_shape
        self.size = (resolution, resolution) if resolution else (h, w)
        self.latent_shape = (c, *self.size)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return _resize(images, self.size)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return _resize(latents, self.image_shape[1:])

    def to(self, device) -> "IdentityCodec":
        return self


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


class AutoencoderCodec:
    """A frozen diffusers AutoencoderKL seen through `encode` / `decode` (see the module doc)."""

    def __init__(self, vae, scale: float, image_shape: tuple[int, int, int], resolution: int,
                 name: str = ""):
        self.vae = vae
        self.scale, self.name, self.resolution = scale, name, resolution
        self.image_shape = tuple(image_shape)
        levels = len(vae.config.block_out_channels) - 1
        if resolution % 2 ** levels:
            raise ValueError(f"VAE resolution {resolution} is not divisible by its downsampling "
                             f"factor {2 ** levels}")
        side = resolution // 2 ** levels
        self.latent_shape = (vae.config.latent_channels, side, side)
        vae_in = vae.config.in_channels
        if not (vae_in == image_shape[0] or (image_shape[0] == 1 and vae_in == 3)):
            raise ValueError(f"a {vae.config.in_channels}-channel VAE cannot encode "
                             f"{image_shape[0]}-channel images")

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    def to(self, device) -> "AutoencoderCodec":
        self.vae.to(device)
        return self

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        x = _resize(images.to(self.device, torch.float32), (self.resolution, self.resolution))
        if x.shape[1] != self.vae.config.in_channels:  # grayscale into an RGB VAE
            x = x.expand(-1, self.vae.config.in_channels, -1, -1)
        return self.vae.encode(x).latent_dist.mean * self.scale

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        x = self.vae.decode(latents.to(self.device, torch.float32) / self.scale).sample
        if x.shape[1] != self.image_shape[0]:  # RGB VAE back to grayscale
            x = x.mean(1, keepdim=True)
        return _resize(x, self.image_shape[1:]).clamp(-1, 1)


def _autoencoder_class():
    try:
        from diffusers import AutoencoderKL
    except ImportError:
        raise ImportError("latent space needs diffusers: pip install 't2i[vae]'") from None
    return AutoencoderKL


def load_autoencoder(name: str):
    """An AutoencoderKL from a local folder or a hub id, with an error that says what to do."""
    AutoencoderKL = _autoencoder_class()
    local = Path(name).expanduser()
    if local.exists():
        # low_cpu_mem_usage=True would need `accelerate`; these VAEs are small enough without.
        return AutoencoderKL.from_pretrained(str(local), low_cpu_mem_usage=False)
    if name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise FileNotFoundError(
            f"VAE {name!r} not found: train one with `t2i vae train --preset fmnist-vae` or set "
            "vae.name to an AutoencoderKL folder or hub id (e.g. stabilityai/sd-vae-ft-mse)")
    try:
        return AutoencoderKL.from_pretrained(name, low_cpu_mem_usage=False)
    except OSError as e:
        raise FileNotFoundError(f"could not load VAE {name!r} from the hub or its local cache "
                                f"({str(e).splitlines()[0]}); download it where the hub is "
                                "reachable, or set vae.name to a local folder") from None


def load_codec(config: Config, device="cpu"):
    """The codec a config trains or samples in: pixels, or the VAE `config.vae.name`, between
    the DiT's space and the images of `config.data`."""
    image_shape = dataset_info(config.data)["shape"]
    vc = config.vae
    if not vc.name:
        return IdentityCodec(image_shape, vc.resolution)
    vae = load_autoencoder(vc.name).requires_grad_(False).eval()
    scale = vc.scale or vae.config.scaling_factor
    resolution = vc.resolution or vae.config.sample_size
    return AutoencoderCodec(vae, scale, image_shape, resolution, vc.resolved_name()).to(device)


def reconstruction_psnr(codec, images: torch.Tensor, batch: int = 500) -> float:
    """PSNR in dB of encode -> decode over a set of images in [-1, 1], from the mean squared
    error over all its pixels measured in [0, 1] at the dataset's resolution."""
    se = 0.0
    for i in range(0, len(images), batch):
        x = images[i:i + batch]
        y = codec.decode(codec.encode(x)).cpu()
        se += ((y - x) / 2).pow(2).sum().item()
    return 10 * math.log10(1 / (se / images.numel()))


# ----------------------------------------------------------------------------- training our own

def build_autoencoder(vc: VAEConfig, channels_in: int, resolution: int):
    """A small AutoencoderKL: ResNet blocks per level, self-attention in the middle block."""
    AutoencoderKL = _autoencoder_class()
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


class VAETrainer:
    """`VAETrainer(config, out_dir).train()` fits `build_autoencoder(config.vae)` to the
    dataset with MSE + kl_weight * KL, then exports `out_dir/vae/` (loadable with
    `AutoencoderKL.from_pretrained`, scaling_factor measured from the data) and `t2i_vae.json`.
    Checkpoints, resume, the time budget and the LR schedule are the DiT trainer's."""

    def __init__(self, config: Config, out_dir: str | Path, resume: Optional[str] = None,
                 progress: bool = True):

        self.config, self.out_dir, self.progress = config, Path(out_dir), progress
        tc, vc = config.train, config.vae
        torch.manual_seed(tc.seed)
        self.device = resolve_device(tc.device)
        self.data = load_dataset(config.data, "train")
        self.resolution = vc.resolution or 32
        self.vae = build_autoencoder(vc, self.data.shape[0], self.resolution).to(self.device)
        self.optimizer = torch.optim.AdamW(self.vae.parameters(), lr=tc.lr,
                                           weight_decay=tc.weight_decay)
        self.order = EpochSampler(len(self.data))
        self.step, self.elapsed = 0, 0.0
        if resume:
            ckpt = resolve_checkpoint(self.out_dir if resume == "latest" else resume)
            self.vae.load_state_dict(load_weights(ckpt, "model"))
            self.step, self.elapsed = restore_training_state(ckpt, self.optimizer, self.order)
            log.info("resumed from %s at step %d", ckpt, self.step)
        n = sum(p.numel() for p in self.vae.parameters())
        log.info("VAE: %.2fM parameters, %dx%d -> %s", n / 1e6, self.resolution, self.resolution,
                 "x".join(map(str, self.codec().latent_shape)))

    def codec(self, scale: float = 1.0) -> AutoencoderCodec:
        return AutoencoderCodec(self.vae, scale, self.data.shape, self.resolution)

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _resize(x, (self.resolution, self.resolution))
        posterior = self.vae.encode(x).latent_dist
        recon = self.vae.decode(posterior.sample()).sample
        kl = 0.5 * (posterior.mean.pow(2) + posterior.var - 1 - posterior.logvar).mean()
        return F.mse_loss(recon, x), kl

    def save(self) -> Path:
        state, tensors = pack_training_state(self.optimizer, self.order, self.step, self.elapsed)
        weights = self.vae.state_dict()
        return save_checkpoint(self.out_dir, self.step, self.config, weights, weights, tensors,
                               state, self.config.train.keep_last)

    def reconstruction_grid(self, images: torch.Tensor):
        codec = self.codec()
        with torch.no_grad():
            self.vae.eval()
            recon = codec.decode(codec.encode(images)).cpu()
            self.vae.train()
        return make_grid((torch.cat([images, recon]) + 1) / 2, ncol=len(images), scale=2)

    def train(self, eval_images: int = 10_000) -> Path:
        """Train, then export `out_dir/vae` with the PSNR on the first `eval_images` test
        images; returns that folder."""
        from torch.utils.tensorboard import SummaryWriter

        from .train import BudgetBar, lr_factor, schedule_progress  # here: train.py imports us

        tc, vc = self.config.train, self.config.vae
        writer = SummaryWriter(str(self.out_dir / "tb"), purge_step=self.step or None)
        shown = self.data.batch(torch.arange(10))[0]
        bar = BudgetBar(tc, self.step, self.elapsed, enabled=self.progress)
        self.vae.train()
        last = time.perf_counter()
        try:
            while schedule_progress(tc, self.step, self.elapsed) < 1.0:  # steps or minutes
                for group in self.optimizer.param_groups:
                    group["lr"] = tc.lr * lr_factor(tc, self.step,
                                                    schedule_progress(tc, self.step, self.elapsed))
                x, _ = self.data.batch(self.order.next(tc.batch_size))
                mse, kl = self.loss(x.to(self.device))
                (mse + vc.kl_weight * kl).backward()
                norm = torch.nn.utils.clip_grad_norm_(self.vae.parameters(), tc.grad_clip or math.inf)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.step += 1
                now = time.perf_counter()
                self.elapsed += now - last
                bar.advance(self.elapsed)
                if self.step % tc.log_every == 0 or self.step == 1:
                    psnr = 10 * math.log10(4 / mse.item())  # images span 2, so peak^2 = 4
                    for k, v in {"recon_mse": mse.item(), "kl": kl.item(), "psnr": psnr,
                                 "grad_norm": norm.item(), "lr": self.optimizer.param_groups[0]["lr"]}.items():
                        writer.add_scalar(f"vae/{k}", v, self.step)
                    bar.set_postfix(step=self.step, psnr=f"{psnr:.1f}", kl=f"{kl.item():.2f}")
                if tc.sample_every and self.step % tc.sample_every == 0:
                    writer.add_image("vae/reconstructions", _hwc(self.reconstruction_grid(shown)),
                                     self.step, dataformats="HWC")
                if tc.ckpt_every and self.step % tc.ckpt_every == 0:
                    self.save()
                last = time.perf_counter()
        finally:
            bar.close()
        self.save()
        self.vae.eval()
        codec = self.codec()
        scale = measure_scale(codec, self.data.batch(self.order.perm[:5000])[0])
        codec.scale = scale
        try:
            test = load_dataset(self.config.data, "test")
        except DataError:  # a captioned folder or HF dataset has no test split
            log.warning("no test split: the PSNR is measured on training images")
            test = self.data
        test = test.batch(torch.arange(min(eval_images, len(test))))[0]
        psnr = reconstruction_psnr(codec, test)
        grid = self.reconstruction_grid(shown)
        writer.add_image("vae/reconstructions", _hwc(grid), self.step, dataformats="HWC")
        writer.close()
        return self.export(scale, psnr)

    def export(self, scale: float, psnr: float) -> Path:
        out = self.out_dir / "vae"
        self.vae.register_to_config(scaling_factor=scale)
        self.vae.save_pretrained(str(out))
        info = {"scaling_factor": scale, "test_psnr_db": psnr, "resolution": self.resolution,
                "latent_shape": list(self.codec().latent_shape), "dataset": self.config.data.dataset,
                "params": sum(p.numel() for p in self.vae.parameters()), "steps": self.step,
                "train_minutes": self.elapsed / 60, "kl_weight": self.config.vae.kl_weight}
        (out / INFO_FILE).write_text(json.dumps(info, indent=2))
        log.info("VAE: test PSNR %.2f dB, latent scale %.4f; exported to %s", psnr, scale, out)
        return out


def _hwc(grid):
    import numpy as np

    return np.asarray(grid.convert("RGB"))
