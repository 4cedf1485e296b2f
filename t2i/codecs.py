"""Latent codecs: the frozen autoencoder between images and the space the DiT works in.

Inference only (training our own VAE is vae_train.py). `load_codec(config)` returns an `IdentityCodec` (pixel space) or an `AutoencoderCodec` over a
diffusers `AutoencoderKL` — our own, trained here by `VAETrainer`, or a pretrained one such as
`stabilityai/sd-vae-ft-mse` — and the rest of t2i only calls `encode` / `decode`:

    encode(images [B, C, H, W] in [-1, 1]) -> latents [B, c, h, w], scaled to unit variance
    decode(latents) -> images [B, C, H, W] in [-1, 1] at the dataset's resolution

Images are resized to the VAE's resolution and back, and grayscale is repeated to RGB for an
RGB VAE (and averaged back), so a 28x28 Fashion-MNIST image can go through SD's VAE at 64x64
(the 64x64 SD-VAE latent recipe, `fmnist-paper-latent`). Encoding takes the posterior mean: the
latents are a deterministic function of the image, which is what makes them cacheable.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from .config import Config
from .data import dataset_info


class IdentityCodec:
    """Pixel space: latents are the images themselves, or, with a `resolution` other than the
    dataset's, the images resized to it (`fmnist-tiny` trains at 16x16) and
    resized back when decoded, so samples and evaluation keep the dataset's size."""

    name = ""
    scale = 1.0

    def __init__(self, image_shape: tuple[int, int, int], resolution: int = 0):
        self.image_shape = tuple(image_shape)
        c, h, w = self.image_shape
        self.size = (resolution, resolution) if resolution else (h, w)
        self.latent_shape = (c, *self.size)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return resize(images, self.size)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return resize(latents, self.image_shape[1:])

    def to(self, device) -> "IdentityCodec":
        return self


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Images resized (bilinear, antialiased) to `size`; unchanged if already that size."""
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
        x = resize(images.to(self.device, torch.float32), (self.resolution, self.resolution))
        if x.shape[1] != self.vae.config.in_channels:  # grayscale into an RGB VAE
            x = x.expand(-1, self.vae.config.in_channels, -1, -1)
        return self.vae.encode(x).latent_dist.mean * self.scale

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        x = self.vae.decode(latents.to(self.device, torch.float32) / self.scale).sample
        if x.shape[1] != self.image_shape[0]:  # RGB VAE back to grayscale
            x = x.mean(1, keepdim=True)
        return resize(x, self.image_shape[1:]).clamp(-1, 1)


def autoencoder_class():
    try:
        from diffusers import AutoencoderKL
    except ImportError:
        raise ImportError("latent space needs diffusers: pip install 't2i[vae]'") from None
    return AutoencoderKL


def load_autoencoder(name: str):
    """An AutoencoderKL from a local folder or a hub id, with an error that says what to do."""
    AutoencoderKL = autoencoder_class()
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
    if not config.latent:
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
