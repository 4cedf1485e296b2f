"""Measuring what we make: the front door. Import from `t2i.evaluation`; behind it, lowest first:

    metrics      Frechet distance, k-NN precision/recall, Inception FID (torchmetrics, optional)
    classifier   the Fashion-MNIST CNN whose features the metrics use (shipped in t2i/assets)
    protocol     Reference (test-set features, real-data floor), generation per class prompt,
                 evaluate_pipeline / evaluate_checkpoint -> a JSON-able report
    sweep        quality over sampling steps per sampler and over CFG scales (CSV + plot)
    reports      default report path, terminal summary, the README's results table
"""

from .classifier import Classifier, features_and_predictions, load_classifier, predict, train_classifier
from .metrics import frechet_distance, inception_fid, precision_recall
from .protocol import (PROMPT_SETS, Reference, class_prompts, evaluate_checkpoint, evaluate_pipeline,
                       generate_per_class, per_prompt_accuracy, prompt_shares)
from .reports import default_report_path, format_report, results_table, update_readme, worst_prompts
from .sweep import sweep

__all__ = [
    "Classifier", "PROMPT_SETS", "Reference", "class_prompts", "default_report_path",
    "evaluate_checkpoint", "evaluate_pipeline", "features_and_predictions", "format_report",
    "frechet_distance", "generate_per_class", "inception_fid", "load_classifier",
    "per_prompt_accuracy", "precision_recall", "predict", "prompt_shares", "results_table",
    "sweep", "train_classifier", "update_readme", "worst_prompts",
]
