"""The evaluation protocol: what is generated, against what, and the report it makes.

Protocol: for each of the ten class names as the prompt, generate N images (seeds 0..N-1, the
given steps / sampler / CFG scale; the report records them) and pass them through t2i's own CNN
(trained by `t2i eval train-classifier`, deterministic, weights shipped in t2i/assets with their
test accuracy). Reported:
- accuracy: the fraction classified as the prompted class, with the confusion matrix;
- FD: the Frechet distance between the classifier's penultimate features of the generated
  images and of the 10,000 test images (an FID with a Fashion-MNIST feature extractor);
- precision / recall: k-NN manifold estimates (k = 3) in the same feature space;
- the real-data floor: the same four numbers for as many real training images, because FD
  depends on the number of images and no generator should be expected to beat real data.
"""

from __future__ import annotations

import time
from typing import Optional

import torch

from ..data import dataset_spec, load_fashion_mnist
from ..pipeline import Pipeline
from .classifier import CLASSIFIER, features_and_predictions, load_classifier
from .metrics import frechet_distance, inception_fid, precision_recall


class Reference:
    """The evaluation's fixed side: the classifier, the features of the reference split (the
    Fashion-MNIST test set) and, as the real-data floor, the same metrics for `n` real training
    images — what a perfect generator would score with that many images."""

    def __init__(self, n: int, data_dir: Optional[str] = None, k: int = 3, seed: int = 0,
                 reference_images: int = 10_000):
        self.classifier, self.meta = load_classifier()
        self.k = k
        test = load_fashion_mnist("test", data_dir)
        m = min(reference_images, len(test))
        self.images = test.batch(torch.arange(m))[0]  # in [-1, 1]; also Inception FID's real side
        self.features, _ = features_and_predictions(self.classifier, self.images)
        self.reference = f"fashion-mnist test ({m} images)"
        train = load_fashion_mnist("train", data_dir)
        idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]
        x, labels = train.batch(idx)
        self.floor = self.score(x, labels)

    @classmethod
    def for_pipeline(cls, pipe: Pipeline, n_per_class: int,
                     reference_images: int = 10_000) -> "Reference":
        """The reference for evaluating `pipe` with n_per_class images per class prompt."""
        if dataset_spec(pipe.config.data).classifier != CLASSIFIER:
            raise ValueError(f"this protocol judges Fashion-MNIST models (its classifier and test "
                             f"set); this checkpoint was trained on {pipe.config.data.dataset}")
        return cls(n_per_class * len(pipe.classes), pipe.config.data.data_dir,
                   reference_images=reference_images)

    def score(self, images: torch.Tensor, labels: torch.Tensor) -> dict:
        """Accuracy, FD, precision and recall of images in [-1, 1] meant to show `labels`."""
        feats, preds = features_and_predictions(self.classifier, images)
        precision, recall = precision_recall(self.features, feats, self.k)
        return {"accuracy": (preds == labels).double().mean().item(),
                "fd": frechet_distance(feats, self.features),
                "precision": precision, "recall": recall, "predictions": preds}


PROMPT_SETS = ("names", "heldout", "paraphrases", "rare")


def class_prompts(pipe: Pipeline, which: str = "names") -> list[list[str]]:
    """The prompts of each class: its display name ("names"), or one of its sets of held-out
    paraphrases ("heldout": 3 per class; "paraphrases": 15 per class; "rare": 6 rare words per
    class; only a pretrained text encoder understands those)."""
    if which not in PROMPT_SETS:
        raise ValueError(f"prompts must be one of {PROMPT_SETS}, not {which!r}")
    classes = pipe.classes
    if which == "names":
        return [[n] for n in classes.names]
    sets = getattr(classes, which)
    if not sets:
        raise ValueError(f"this dataset has no {which!r} prompt set")
    return [list(h) for h in sets]


def prompt_shares(options: list[str], n_per_class: int) -> list[tuple[str, int, int]]:
    """How a class's n_per_class images are shared evenly among its prompts: (prompt, first,
    count) for each, `first` counted within the class."""
    out, first = [], 0
    for i, prompt in enumerate(options):
        share = n_per_class // len(options) + (i < n_per_class % len(options))
        out.append((prompt, first, share))
        first += share
    return out


def generate_per_class(pipe: Pipeline, n_per_class: int, seed: int = 0, batch: int = 100,
                       sets: Optional[list[list[str]]] = None,
                       **sampling) -> tuple[torch.Tensor, torch.Tensor]:
    """n_per_class images for each class (seeds seed .. seed + n - 1), in [-1, 1], with their
    labels. `sets` holds each class's prompts (default: its name); a class with several prompts
    shares its images evenly among them (`prompt_shares`). `sampling`: the pipeline's keywords
    (steps, cfg, sampler, clip_x0, cfg_interval; a missing one is the checkpoint's)."""
    sets = sets or class_prompts(pipe, "names")
    images = []
    for options in sets:
        for prompt, first, share in prompt_shares(options, n_per_class):
            for start in range(first, first + share, batch):
                k = min(batch, first + share - start)
                images.append(pipe([prompt], seed=seed + start, num_per_prompt=k, **sampling) * 2 - 1)
    labels = torch.arange(len(sets)).repeat_interleave(n_per_class)
    return torch.cat(images), labels


def per_prompt_accuracy(sets: list[list[str]], n_per_class: int, labels: torch.Tensor,
                        preds: torch.Tensor) -> dict[str, float]:
    """Accuracy of each prompt, given images laid out as `generate_per_class` makes them."""
    out = {}
    for c, options in enumerate(sets):
        for prompt, first, share in prompt_shares(options, n_per_class):
            rows = slice(c * n_per_class + first, c * n_per_class + first + share)
            out[prompt] = (preds[rows] == labels[rows]).double().mean().item()
    return out


def evaluate_pipeline(pipe: Pipeline, reference: Reference, n_per_class: int = 100,
                      seed: int = 0, inception: bool = False, prompts: str = "names",
                      **sampling) -> dict:
    """The evaluation report of a pipeline (see the module doc for the protocol). `sampling`:
    the pipeline's keywords; what is not given (or None) samples as the checkpoint's config
    says, and the report records the settings used."""
    sampling = pipe.sampling(**sampling)
    names = pipe.classes.names
    sets = class_prompts(pipe, prompts)
    start = time.perf_counter()
    images, labels = generate_per_class(pipe, n_per_class, seed, sets=sets, **sampling)
    seconds = time.perf_counter() - start
    scores = reference.score(images, labels)
    preds = scores.pop("predictions")
    confusion = torch.zeros(len(names), len(names), dtype=torch.long)  # [prompted, predicted]
    confusion.index_put_((labels, preds), torch.ones_like(labels), accumulate=True)
    floor = {k: v for k, v in reference.floor.items() if k != "predictions"}
    fid, note = None, "not requested (t2i eval --inception)"
    if inception:
        fid, note = inception_fid(images, reference.images)
    return {
        "protocol": {"images": len(images), "n_per_class": n_per_class, **sampling,
                     # how grounded prompts were read before the lookup (retrieval.py)
                     **({"reading": pipe.caption_index().reading(sampling["dictionary"])}
                        if sampling["retrieve"] else {}),
                     "seed": seed, "prompts": prompts, "prompt_list": sets,
                     "reference": reference.reference,
                     "features": "t2i Fashion-MNIST classifier, penultimate layer (128-d)",
                     "precision_recall_k": reference.k,
                     "real_floor": f"{len(images)} random training images (seed 0) scored "
                                   "the same way"},
        **scores,
        "per_class": {n: c for n, c in zip(names, (confusion.diag() / n_per_class).tolist())},
        "per_prompt": per_prompt_accuracy(sets, n_per_class, labels, preds),
        "confusion": confusion.tolist(),
        "real_floor": floor,
        "inception_fid": fid, "inception_note": note,
        "headline": ["accuracy", "fd", "precision", "recall"],  # what training logs of it
        "sample_img_per_s": len(images) / seconds,
        "classifier_test_accuracy": reference.meta["test_accuracy"],
    }
