
import pytest
import torch

from t2i.evaluation import (
    Reference,
    class_prompts,
    evaluate_pipeline,
    format_report,
    worst_prompts,
)
from t2i.pipeline import Pipeline, build_networks
from t2i.text.captions import FASHION_MNIST


def test_reference_floor_is_real_data_scoring_well():
    ref = Reference(n=500, reference_images=2000)
    floor = ref.floor
    assert floor["accuracy"] > 0.85 and floor["fd"] < 5
    assert floor["precision"] > 0.6 and floor["recall"] > 0.6
    noise = torch.rand(500, 1, 28, 28) * 2 - 1
    scores = ref.score(noise, torch.zeros(500, dtype=torch.long))
    assert scores["fd"] > 10 * floor["fd"] and scores["precision"] < 0.1


def test_the_paraphrase_set_scores_every_prompt_and_names_the_worst(debug_config, tiny_text_models, tmp_path):
    config = debug_config.override([f"text.encoder={tiny_text_models['bert']}", f"data.cache_dir={tmp_path}"])
    pipe = Pipeline(config, build_networks(config, (1, 28, 28)), "cpu", "fp32")
    assert class_prompts(pipe, "paraphrases") == [list(p) for p in FASHION_MNIST.paraphrases]
    assert [len(p) for p in class_prompts(pipe, "heldout")] == [3] * 10
    report = evaluate_pipeline(pipe, Reference(150, reference_images=300), n_per_class=15,
                               prompts="paraphrases", steps=1)
    assert report["protocol"]["prompts"] == "paraphrases" and report["protocol"]["images"] == 150
    assert set(report["per_prompt"]) == {p for ps in FASHION_MNIST.paraphrases for p in ps}
    worst = worst_prompts(report, 10)
    assert [a for _, a, _ in worst] == sorted(report["per_prompt"].values())[:10]
    prompt, acc, label = worst[0]
    assert prompt in FASHION_MNIST.paraphrases[FASHION_MNIST.names.index(label)]
    text = format_report(report)
    assert "worst prompts" in text and f"{prompt!r} ({label})" in text


def test_a_dataset_without_paraphrases_says_so(debug_config):
    config = debug_config.override(["data.dataset=mnist"])
    pipe = Pipeline(config, build_networks(config, (1, 28, 28)), "cpu", "fp32")
    with pytest.raises(ValueError, match="no 'paraphrases' prompt set"):
        class_prompts(pipe, "paraphrases")


def test_a_grounded_report_says_how_prompts_were_read(debug_config, tiny_text_models, tmp_path):
    config = debug_config.override([f"text.encoder={tiny_text_models['bert']}", "text.pooling=sentence",
                                    f"data.cache_dir={tmp_path}"])
    pipe = Pipeline(config, build_networks(config, (1, 28, 28)), "cpu", "fp32")
    reference = Reference(20, reference_images=100)
    grounded = evaluate_pipeline(pipe, reference, n_per_class=2, steps=1, retrieve=2)["protocol"]
    assert grounded["retrieve"] == 2 and grounded["reading"] == "dictionary, spelled, head phrases"
    as_typed = evaluate_pipeline(pipe, reference, n_per_class=2, steps=1, retrieve=2, dictionary=False)["protocol"]
    assert as_typed["reading"] == "spelled, head phrases" and as_typed["dictionary"] is False
    assert "reading" not in evaluate_pipeline(pipe, reference, n_per_class=2, steps=1)["protocol"]
