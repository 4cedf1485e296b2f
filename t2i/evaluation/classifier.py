"""The evaluation classifier: a small CNN trained on Fashion-MNIST by `t2i eval train-classifier`
(deterministic), its weights shipped in t2i/assets with their test accuracy. Its penultimate
layer is the feature space of FD and precision/recall."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from ..data import load_fashion_mnist

ASSETS = Path(__file__).resolve().parent.parent / "assets"
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
    root = Path(path) if path else ASSETS
    model = Classifier()
    model.load_state_dict(load_file(root / f"{CLASSIFIER}.safetensors"))
    meta = json.loads((root / f"{CLASSIFIER}.json").read_text())
    return model.eval(), meta


@torch.no_grad()
def features_and_predictions(classifier: Classifier, images: torch.Tensor,
                             batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's penultimate features (float64 [N, 128]) and predicted classes of images
    in [-1, 1]."""
    classifier.eval()
    feats, preds = [], []
    for i in range(0, len(images), batch):
        f = classifier.features(images[i:i + batch])
        feats.append(f.double())
        preds.append(classifier.head(f).argmax(1))
    return torch.cat(feats), torch.cat(preds)
