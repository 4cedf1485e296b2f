"""Measuring what we make: class accuracy from a Fashion-MNIST classifier, throughput and FLOP
utilisation, and figures.

Accuracy protocol: for each of the ten class names as the prompt, generate N images (seeds
0..N-1, the given steps / sampler / CFG scale), classify them with t2i's own CNN (trained by
`t2i eval train-classifier`, weights shipped in t2i/assets with their test accuracy), and report
the fraction classified as the prompted class.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .config import Config
from .data import load_fashion_mnist
from .images import make_grid
from .pipeline import Pipeline
from .runtime import matmul_flops

log = logging.getLogger(__name__)

ASSETS = Path(__file__).parent / "assets"
CLASSIFIER = "fmnist_classifier"


class Classifier(nn.Module):
    """A small CNN for 28x28 grayscale images in [-1, 1]; `features` is its penultimate layer."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),  # 7x7
            nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (B, 64)
        self.fc = nn.Sequential(nn.Linear(64, 128), nn.ReLU())
        self.head = nn.Linear(128, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
    model.eval()
    return torch.cat([model(images[i:i + batch]).argmax(1) for i in range(0, len(images), batch)])


def train_classifier(out_dir: str | Path, data_dir: Optional[str] = None, epochs: int = 8,
                     seed: int = 0, progress: bool = True) -> float:
    """Train the evaluation classifier deterministically; write weights + test accuracy."""
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    train, test = load_fashion_mnist("train", data_dir), load_fashion_mnist("test", data_dir)
    model = Classifier()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * (len(train) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    bar = tqdm(total=steps, disable=not progress, desc="classifier")
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(train))
        for i in range(0, len(perm) - 127, 128):
            x, y = train.batch(perm[i:i + 128])
            # Light augmentation (random shifts) keeps it from leaning on exact pixel positions.
            x = torch.roll(x, shifts=tuple(torch.randint(-2, 3, (2,)).tolist()), dims=(2, 3))
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    x, y = test.batch(torch.arange(len(test)))
    acc = (predict(model, x) == y).float().mean().item()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / f"{CLASSIFIER}.safetensors")
    (out / f"{CLASSIFIER}.json").write_text(json.dumps(
        {"test_accuracy": acc, "epochs": epochs, "seed": seed, "test_images": len(test)}, indent=2))
    return acc


def load_classifier(path: Optional[str | Path] = None) -> tuple[Classifier, dict]:
    from safetensors.torch import load_file

    root = Path(path) if path else ASSETS
    model = Classifier()
    model.load_state_dict(load_file(root / f"{CLASSIFIER}.safetensors"))
    meta = json.loads((root / f"{CLASSIFIER}.json").read_text())
    return model.eval(), meta


def class_accuracy(checkpoint: str | Path, n_per_class: int = 100, steps: int = 25,
                   cfg: float = 3.0, sampler: str = "euler", seed: int = 0,
                   batch: int = 100) -> dict:
    """Generate `n_per_class` images per class prompt and classify them."""
    pipe = Pipeline.from_pretrained(checkpoint)
    classifier, meta = load_classifier()
    names = pipe.networks["text"].class_names
    confusion = torch.zeros(len(names), len(names), dtype=torch.long)  # [prompted, predicted]
    start = time.perf_counter()
    for label, name in enumerate(names):
        for first in range(0, n_per_class, batch):
            k = min(batch, n_per_class - first)
            images = pipe([name], steps=steps, cfg=cfg, sampler=sampler, seed=seed + first,
                          num_per_prompt=k)
            confusion[label] += torch.bincount(predict(classifier, images * 2 - 1),
                                               minlength=len(names))
    seconds = time.perf_counter() - start
    correct = (confusion.diag() / n_per_class).tolist()
    report = {"accuracy": sum(correct) / len(correct),
              "per_class": {n: c for n, c in zip(names, correct)},
              "confusion": confusion.tolist(),
              "images": n_per_class * len(names), "steps": steps, "cfg": cfg, "sampler": sampler,
              "sample_img_per_s": n_per_class * len(names) / seconds,
              "classifier_test_accuracy": meta["test_accuracy"]}
    return report


def denoising_strip(pipe: Pipeline, prompts: list[str], steps: Optional[int] = None,
                    columns: int = 8, **kwargs):
    """One row per prompt: the clean image predicted at evenly spaced steps, then the result."""
    steps = steps or pipe.config.sample.steps
    keep = sorted({round(i * (steps - 1) / max(columns - 1, 1)) for i in range(columns)})
    frames = []

    def collect(i, t, x, x1):
        if i in keep:
            frames.append(pipe.decode(x1))
    final = pipe(prompts, steps=steps, callback=collect, **kwargs)
    frames.append(final)
    strip = torch.stack(frames, dim=1)  # (P, frames, C, H, W)
    return make_grid(strip.flatten(0, 1), ncol=strip.shape[1], scale=2)


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def benchmark(config: Config, train_steps: int = 30, sample_images: int = 100,
              warmup: int = 3) -> dict:
    """Training and sampling throughput, with model FLOPs counted by torch's FlopCounterMode and
    compared with the best matmul peak (fp32 or bf16) measured here and now: MFU is the fraction of
    what this device could do at its fastest precision, whatever precision the run used."""
    from .train import Trainer

    device_peaks = {"fp32": matmul_flops(torch.float32), "bf16": matmul_flops(torch.bfloat16)}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, tmp, progress=False)
    tc = config.train
    for _ in range(warmup):
        trainer.train_step()
    start = time.perf_counter()
    for _ in range(train_steps):
        trainer.train_step()
    train_s = time.perf_counter() - start
    images = train_steps * tc.batch_size * tc.grad_accum
    train_ips = images / train_s

    def one_micro_batch():
        x, labels = trainer.data.batch(trainer.order.next(tc.batch_size))
        trainer.loss_on(x.to(trainer.device), labels.to(trainer.device)).backward()
    train_flops = count_flops(one_micro_batch) / tc.batch_size
    trainer.optimizer.zero_grad(set_to_none=True)

    pipe = trainer.pipeline()
    names = trainer.networks["text"].class_names
    per_prompt = max(1, sample_images // len(names))
    pipe(names[:1], num_per_prompt=2)  # warm-up
    start = time.perf_counter()
    pipe(names, num_per_prompt=per_prompt)
    sample_s = time.perf_counter() - start
    sample_ips = per_prompt * len(names) / sample_s
    sample_flops = count_flops(lambda: pipe(names[:1], num_per_prompt=1))
    precision = "bf16" if trainer.dtype == torch.bfloat16 else "fp32"
    peak = max(device_peaks.values())
    return {
        "preset": config.preset,
        "params_M": trainer.networks["dit"].num_params() / 1e6,
        "precision": precision,
        "peak_fp32_GFLOPs": device_peaks["fp32"] / 1e9,
        "peak_bf16_GFLOPs": device_peaks["bf16"] / 1e9,
        "train_img_per_s": train_ips,
        "train_GFLOP_per_img": train_flops / 1e9,
        "train_MFU": train_ips * train_flops / peak,
        "sample_steps": config.sample.steps,
        "sample_cfg": config.sample.cfg,
        "sample_img_per_s": sample_ips,
        "sample_GFLOP_per_img": sample_flops / 1e9,
        "sample_MFU": sample_ips * sample_flops / peak,
    }


# ----------------------------------------------------------------------------- VAE figures

def vae_figures(codec, images: torch.Tensor, out: str | Path, psnr: Optional[float] = None,
                levels: int = 6, seed: int = 0) -> dict[str, Path]:
    """Three PNGs for a latent codec and a few images in [-1, 1]:
    reconstruction.png  originals (top) and their reconstructions (bottom), PSNR in the title;
    latents.png         one row per image: the image, then each latent channel (min-max scaled);
    latent_noising.png  one row per image: its latent at t = 1 (clean) down to t = 0 (noise),
                        each decoded — what the DiT sees along the way, as images."""
    from .images import with_title
    from .objectives import interpolate

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    latents = codec.encode(images).cpu()
    recon = codec.decode(latents).cpu()
    mse = ((recon - images) / 2).pow(2).mean().item()
    title = f"top: original, bottom: reconstruction; PSNR {10 * torch.log10(torch.tensor(1 / mse)):.1f} dB here"
    if psnr is not None:
        title += f", {psnr:.1f} dB on the test set"
    paths = {"reconstruction": out / "reconstruction.png", "latents": out / "latents.png",
             "latent_noising": out / "latent_noising.png"}
    with_title(make_grid((torch.cat([images, recon]) + 1) / 2, ncol=len(images), scale=3),
               title).save(paths["reconstruction"])

    c, h, w = images.shape[1:]
    lo = latents.amin(dim=(2, 3), keepdim=True)
    hi = latents.amax(dim=(2, 3), keepdim=True)
    channels = ((latents - lo) / (hi - lo + 1e-8)).flatten(0, 1)[:, None]  # (B * c_lat, 1, h', w')
    channels = F.interpolate(channels, size=(h, w), mode="nearest").expand(-1, c, -1, -1)
    rows = torch.cat([(images[:, None] + 1) / 2, channels.view(len(images), -1, c, h, w)], dim=1)
    with_title(make_grid(rows.flatten(0, 1), ncol=rows.shape[1], scale=3),
               f"image, then its {latents.shape[1]} latent channels "
               f"({latents.shape[2]}x{latents.shape[3]})").save(paths["latents"])

    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(seed))
    ts = torch.linspace(1, 0, levels)
    noised = torch.stack([interpolate(latents, noise, t.expand(len(latents))) for t in ts], dim=1)
    decoded = codec.decode(noised.flatten(0, 1)).cpu()
    with_title(make_grid((decoded + 1) / 2, ncol=levels, scale=3),
               "latent at t = " + ", ".join(f"{t:.1f}" for t in ts.tolist()) + ", decoded"
               ).save(paths["latent_noising"])
    return paths
