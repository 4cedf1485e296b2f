"""The dataset registry: every `data.dataset` name resolves here, once.

A new dataset is one `DatasetSpec` in `DATASETS`. What the rest of t2i asks of a dataset — its
image shape without loading it, whether it is labelled (its captions come from class names) and
whether t2i ships a classifier that can evaluate models trained on it — it asks here, never by
testing the dataset's name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Optional

from ..text.captions import CIFAR10, FASHION_MNIST, MNIST, Classes
from .base import DataError, ImageDataset
from .captioned import open_image_cache
from .cifar import load_cifar10
from .emoji import load_emoji, training_captions as emoji_captions
from .idx import load_idx_dataset
from .shapes import load_shapes, training_captions as shapes_captions


@dataclass(frozen=True)
class DatasetSpec:
    """One entry of DATASETS: how to load a dataset, its image shape, classes and judge."""
    load: Callable[..., ImageDataset]  # (data config, split, subset, progress) -> dataset
    shape: Callable[..., tuple[int, int, int]]  # data config -> (C, H, W)
    classes: Optional[Classes] = None  # a labelled dataset's classes; None: free-form captions
    splits: tuple[str, ...] = ("train", "test")
    # The evaluation classifier shipped in t2i/assets for this dataset (see evaluation/), if any.
    classifier: Optional[str] = None
    examples: tuple[str, ...] = ()  # prompts to offer (CLI, demo) when there are no class names
    # The training captions of a dataset that is not labelled, where t2i knows them without its
    # images (the words a prompt's unknown words are read into: text/lexicon.py).
    captions: Optional[Callable[..., list[str]]] = None  # data config -> captions


def _captioned(cfg, split, subset, progress):
    return open_image_cache(cfg, progress=progress)


def _captioned_shape(cfg) -> tuple[int, int, int]:
    return (cfg.channels, cfg.image_size, cfg.image_size)


DATASETS: dict[str, DatasetSpec] = {
    "fashion-mnist": DatasetSpec(
        lambda cfg, split, subset, progress: load_idx_dataset("fashion-mnist", split, cfg.data_dir, subset),
        lambda cfg: (1, 28, 28), FASHION_MNIST, classifier="fmnist_classifier"),
    "mnist": DatasetSpec(
        lambda cfg, split, subset, progress: load_idx_dataset("mnist", split, cfg.data_dir, subset),
        lambda cfg: (1, 28, 28), MNIST),
    "cifar10": DatasetSpec(
        lambda cfg, split, subset, progress: load_cifar10(split, cfg.data_dir, subset),
        lambda cfg: (3, 32, 32), CIFAR10),
    # A captioned folder (data.data_dir) or a Hugging Face dataset (data.hf_name), read once into
    # a memory-mapped image cache (captioned.py).
    "folder": DatasetSpec(_captioned, _captioned_shape, splits=("train",)),
    "hf": DatasetSpec(_captioned, _captioned_shape, splits=("train",)),
    # Noto Color Emoji rendered into an image cache, captioned with the Unicode names (emoji.py).
    "emoji": DatasetSpec(lambda cfg, split, subset, progress: load_emoji(cfg, progress=progress),
                         _captioned_shape, splits=("train",), classifier="emoji_classifier",
                         examples=("a purple heart", "a smiling cat", "a red apple", "a rocket",
                                   "a dog face", "a blue book", "a green heart", "a grinning face"),
                         captions=emoji_captions),
    # Coloured shapes drawn on the fly with exact captions (shapes.py), judged GenEval-style.
    "shapes": DatasetSpec(lambda cfg, split, subset, progress: load_shapes(cfg, progress=progress),
                          _captioned_shape, splits=("train",), classifier="shapes_judge",
                          examples=("a red circle to the left of a blue square", "three green triangles",
                                    "a yellow square and a purple circle", "a small orange diamond",
                                    "a blue cross above a red triangle", "two crosses"),
                          captions=shapes_captions),
}


def dataset_spec(cfg) -> DatasetSpec:
    """The registry entry of a `DataConfig`'s dataset."""
    if cfg.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {cfg.dataset!r}; one of {list(DATASETS)}")
    return DATASETS[cfg.dataset]


def unseen_split(cfg) -> str:
    """The split to measure on images training did not see: "test", or "train" for a dataset
    that has none (captioned folders, Hugging Face datasets, emoji)."""
    return "test" if "test" in dataset_spec(cfg).splits else "train"


def load_dataset(cfg, split: str = "train", progress: bool = True) -> ImageDataset:
    """The dataset named by a `DataConfig` (`progress`: a bar while an image cache is built).
    "val" is the last `data.holdout` images of the training set, which "train" then leaves out."""
    if split not in ("train", "test", "val"):
        raise ValueError(f"split must be 'train', 'test' or 'val', not {split!r}")
    spec = dataset_spec(cfg)
    if split == "val" and not cfg.holdout:
        raise DataError("no validation images: set data.holdout=N to keep N images out of training")
    if split not in spec.splits + ("val",):
        raise DataError(f"the {cfg.dataset} dataset has no {split} split")
    data = spec.load(cfg, "test" if split == "test" else "train", cfg.subset if split != "test" else 0,
                     progress)
    if split != "test" and cfg.holdout:
        if cfg.holdout >= len(data):
            raise DataError(f"data.holdout={cfg.holdout} leaves nothing to train on: the training "
                            f"set has {len(data)} images")
        data = data.take(slice(len(data) - cfg.holdout, None) if split == "val"
                         else slice(0, len(data) - cfg.holdout))
    if cfg.captions == "templates":
        return data
    return dataclasses.replace(data, classes=dataset_classes(cfg), template_share=cfg.template_share)


def dataset_classes(cfg) -> Optional[Classes]:
    """A labelled dataset's classes, with their caption bank where `data.captions=bank`, or
    only "a photo of a {name}" where `data.captions=photo`."""
    classes = dataset_spec(cfg).classes
    if cfg.captions != "templates" and classes is None:
        raise ValueError(f"data.captions={cfg.captions} is for class-labelled datasets (fashion-mnist, "
                         f"cifar10, mnist); {cfg.dataset} has its own captions")
    if cfg.captions == "bank":
        return classes.with_bank()
    return classes.photo_captions() if cfg.captions == "photo" else classes


def dataset_info(cfg) -> dict:
    """What a model needs to know of its dataset without loading it: the image shape, for
    a labelled dataset its classes (else None), and example prompts."""
    spec = dataset_spec(cfg)
    return {"shape": spec.shape(cfg), "classes": dataset_classes(cfg), "examples": list(spec.examples)}


def known_captions(cfg) -> Optional[tuple[list[str], Optional[list[int]]]]:
    """The training captions of a dataset where t2i knows them without loading its images, with
    each caption's class on labelled data (else None): (captions, labels), or None (a captioned
    folder's captions are in its files)."""
    classes = dataset_classes(cfg)
    if classes is not None:
        per_class = classes.training_captions()
        return [c for caps in per_class for c in caps], [k for k, caps in enumerate(per_class) for _ in caps]
    spec = dataset_spec(cfg)
    return (spec.captions(cfg), None) if spec.captions else None


def is_labelled(cfg) -> bool:
    """Whether the dataset is class-labelled: its captions come from a finite set made of class
    names, which a text encoder can encode once ahead of training."""
    return dataset_spec(cfg).classes is not None
