"""Measuring what we make: the front door. Import from `t2i.evaluation`; behind it, lowest first:

    metrics      Frechet distance, k-NN precision/recall, Inception FID (torchmetrics, optional)
    classifier   the Fashion-MNIST CNN whose features the metrics use (shipped in t2i/assets)
    colour       the dominant colour name of an image (colour accuracy)
    protocol     Reference (test-set features, real-data floor), generation per class prompt,
                 evaluate_pipeline -> a JSON-able report (Fashion-MNIST)
    emoji        the emoji judge (group/subgroup CNN), EmojiReference, evaluate_emoji
    shapes       the GenEval-style judge of shapes (exact detector), ShapesReference, evaluate_shapes
    validation   validation loss on held-out images (any dataset)
    judges       which evaluation a dataset gets: reference_for, evaluate, evaluate_checkpoint
    sweep        quality over sampling steps per sampler and over CFG scales (CSV + plot)
    reports      default report path, terminal summary, the docs' results table
"""

from .classifier import Classifier, features_and_predictions, load_classifier, predict, train_classifier
from .colour import dominant_colours
from .emoji import EmojiReference, evaluate_emoji, train_emoji_classifier
from .judges import evaluate, evaluate_checkpoint, has_evaluator, reference_for
from .metrics import frechet_distance, inception_fid, precision_recall
from .protocol import (PROMPT_SETS, Reference, class_prompts, evaluate_pipeline, generate_per_class,
                       per_prompt_accuracy, prompt_shares)
from .shapes import ShapesReference, evaluate_shapes
from .reports import default_report_path, format_report, results_table, update_results_table, worst_prompts
from .sweep import sweep
from .validation import validation_loss

__all__ = [
    "Classifier", "EmojiReference", "PROMPT_SETS", "Reference", "ShapesReference", "class_prompts",
    "default_report_path", "dominant_colours", "evaluate", "evaluate_checkpoint", "evaluate_emoji",
    "evaluate_pipeline", "evaluate_shapes", "features_and_predictions", "format_report",
    "frechet_distance", "generate_per_class", "has_evaluator", "inception_fid", "load_classifier",
    "per_prompt_accuracy", "precision_recall", "predict", "prompt_shares", "reference_for",
    "results_table", "sweep", "train_classifier", "train_emoji_classifier", "update_results_table",
    "validation_loss", "worst_prompts",
]
