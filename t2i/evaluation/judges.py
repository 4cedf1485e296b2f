"""Which evaluation a model gets: each dataset with an evaluator names it in the dataset registry
(`DatasetSpec.classifier`): Fashion-MNIST is judged by protocol.py, emoji by emoji.py, shapes by
shapes.py. Training
(`train.eval_every`), `t2i eval report` and the studies come through here."""

from __future__ import annotations

from pathlib import Path

from ..checkpoint import load_training_state, resolve_checkpoint
from ..data import dataset_spec
from ..pipeline import Pipeline
from .emoji import EmojiReference, evaluate_emoji
from .protocol import Reference, evaluate_pipeline
from .shapes import ShapesReference, evaluate_shapes


def has_evaluator(data_config) -> bool:
    """Whether t2i ships a judge for models of this dataset."""
    return bool(dataset_spec(data_config).classifier)


def reference_for(pipe: Pipeline, n: int, reference_images: int = 10_000, prompts: str = "names"):
    """The fixed side of the evaluation of `pipe` with `n` images per class or prompt (for
    shapes, `prompts` picks the set: "geneval", the default, or "phrasings")."""
    judge = dataset_spec(pipe.config.data).classifier
    if judge == "emoji_classifier":
        return EmojiReference(n, font=pipe.config.data.font)
    if judge == "shapes_judge":
        return ShapesReference(n, "geneval" if prompts == "names" else prompts, pipe.config.data.image_size)
    if judge:
        return Reference.for_pipeline(pipe, n, reference_images)
    raise ValueError(f"t2i has no evaluator for {pipe.config.data.dataset} models (it judges "
                     "fashion-mnist, emoji and shapes); training on it logs the validation loss instead")


def evaluate(pipe: Pipeline, reference, n: int, seed: int = 0, inception: bool = False,
             prompts: str = "names", **sampling) -> dict:
    """The report of `pipe` against `reference` (from `reference_for`)."""
    if isinstance(reference, EmojiReference):
        return evaluate_emoji(pipe, reference, n, seed, **sampling)
    if isinstance(reference, ShapesReference):
        return evaluate_shapes(pipe, reference, n, seed, **sampling)
    return evaluate_pipeline(pipe, reference, n, seed, inception, prompts, **sampling)


def evaluate_checkpoint(checkpoint: str | Path, n_per_class: int = 100, seed: int = 0,
                        inception: bool = False, reference_images: int = 10_000,
                        prompts: str = "names", compile: bool = False, **sampling) -> dict:
    """`t2i eval`: the report of a checkpoint, with what trained it (preset, steps, minutes).
    `compile` as for `Pipeline`; `sampling` as for `evaluate_pipeline`."""
    ckpt = resolve_checkpoint(checkpoint)
    pipe = Pipeline.from_pretrained(ckpt, compile=compile)
    reference = reference_for(pipe, n_per_class, reference_images, prompts)
    report = evaluate(pipe, reference, n_per_class, seed, inception, prompts, **sampling)
    state, _ = load_training_state(ckpt)
    tc = pipe.config.train
    report["run"] = {"checkpoint": str(ckpt), "preset": pipe.config.preset,
                     "vae": pipe.config.vae.name or None, "text": pipe.config.text.encoder,
                     "steps": state["step"], "precision": state.get("precision"),
                     "train_minutes": state["elapsed"] / 60,
                     "train_img_per_s": state["step"] * tc.batch_size * tc.grad_accum / max(state["elapsed"], 1e-9)}
    return report
