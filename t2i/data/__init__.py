"""Datasets: the front door. Import from `t2i.data`; the modules behind it, lowest first:

    base        ImageDataset (uint8 images + a label or captions each), EpochSampler, DataError
    download    where dataset files are looked for; atomic downloads
    idx         Fashion-MNIST and MNIST (IDX files, checksummed)
    cifar       CIFAR-10 (pickles read by an unpickler that builds arrays only)
    filenames   captions from file and folder names, for folders without a caption file
    coco        COCO's captions_*.json annotations, for a COCO folder as it is
    captioned   captioned folders and Hugging Face datasets -> a memory-mapped image cache
    emoji       Noto Color Emoji rendered into an image cache, captioned with Unicode names
    shapes      coloured shapes drawn on the fly with exact captions; their grammar (parse)
    registry    DATASETS: each `data.dataset` name once; load_dataset, dataset_info, is_labelled,
                known_captions
    latents     a training set encoded through a VAE into a memory-mapped latent cache
    show        what a dataset holds, and a grid of its images with their captions
"""

from .base import DataError, EpochSampler, ImageDataset
from .captioned import CaptionedDataset, image_cache_path, open_image_cache
from .cifar import find_cifar10, load_cifar10, read_cifar_batch
from .idx import find_fashion_mnist, find_idx_dataset, load_fashion_mnist, load_idx_dataset, parse_idx, read_idx
from .latents import LatentDataset, latent_cache_path, open_latent_cache
from .registry import (DATASETS, DatasetSpec, dataset_info, dataset_spec, is_labelled, known_captions,
                       load_dataset, unseen_split)
from .shapes import load_shapes
from .show import caption_grid, describe, format_description

__all__ = [
    "DATASETS", "CaptionedDataset", "DataError", "DatasetSpec", "EpochSampler", "ImageDataset",
    "LatentDataset", "caption_grid", "dataset_info", "describe", "format_description", "dataset_spec", "find_cifar10", "find_fashion_mnist",
    "find_idx_dataset", "image_cache_path", "is_labelled", "known_captions", "latent_cache_path", "load_cifar10",
    "load_dataset", "load_fashion_mnist", "load_idx_dataset", "load_shapes", "open_image_cache",
    "open_latent_cache", "parse_idx", "read_cifar_batch", "read_idx", "unseen_split",
]
