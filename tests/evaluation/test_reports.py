import json

import pytest

from t2i.evaluation.reports import RESULTS_BEGIN, RESULTS_END, sampling_label, update_results_table

PROTOCOL = {"sampler": "euler", "steps": 12, "cfg": 4.5, "cfg_interval": [0.2, 1.0], "images": 1000,
            "prompts": "names"}
SCORES = {"accuracy": 0.969, "fd": 0.75, "precision": 0.896, "recall": 0.644}


def test_the_sampling_label_says_how_images_were_made():
    assert sampling_label({**PROTOCOL, "cfg_interval": None}) == "euler 12, CFG 4.5"
    assert sampling_label(PROTOCOL) == "euler 12, CFG 4.5 on t in [0.2, 1)"
    assert sampling_label({**PROTOCOL, "retrieve": 8}) == "euler 12, CFG 4.5 on t in [0.2, 1), grounded on 8 captions"
    assert sampling_label({**PROTOCOL, "retrieve": 8, "reading": "spelled, head phrases"}) == \
        "euler 12, CFG 4.5 on t in [0.2, 1), grounded on 8 captions (spelled, head phrases)"


def test_the_results_table_keeps_the_class_accuracy_reports_and_names_the_others(tmp_path):
    run = {"preset": "fmnist-text", "train_minutes": 10.0, "steps": 5368, "train_img_per_s": 573.0}
    fmnist = {"run": run, "protocol": PROTOCOL, "real_floor": {**SCORES, "accuracy": 0.934}, **SCORES}
    emoji = {"run": run, "protocol": PROTOCOL, "group_accuracy": 0.55, "fd": 60.3}
    (tmp_path / "a.json").write_text(json.dumps(fmnist))
    (tmp_path / "emoji.json").write_text(json.dumps(emoji))
    readme = tmp_path / "results.md"
    readme.write_text(f"before\n{RESULTS_BEGIN}\nold table\n{RESULTS_END}\nafter\n")
    assert update_results_table(readme, [tmp_path / "a.json", tmp_path / "emoji.json"]) == ["emoji.json"]
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old table" not in text
    row = [line for line in text.splitlines() if line.startswith("| `fmnist-text`")]
    assert len(row) == 1 and "| 96.9% (93.4%) | 0.75 (0.75) |" in row[0] and row[0].endswith("| a.json |")
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="results markers"):
        update_results_table(readme, [tmp_path / "a.json"])
