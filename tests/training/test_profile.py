import json

from t2i.training.profile import PHASES, format_profile, profile_training


def test_a_profile_splits_the_step_into_phases_and_names_the_top_operators(debug_config, tmp_path):
    report = profile_training(debug_config, steps=3, warmup=1, top=5, trace=tmp_path / "trace.json")
    phases = report["phases_ms"]
    assert set(phases) == {*PHASES, "other"}
    assert all(phases[p] > 0 for p in ("data", "data.images", "data.text", "forward", "backward",
                                       "optimizer", "ema"))
    assert phases["data.images"] + phases["data.text"] <= phases["data"] * 1.01  # parts of it
    top_level = sum(phases[p] for p in ("data", "forward", "backward", "optimizer", "ema", "other"))
    assert abs(top_level - report["step_ms"]) < 0.05 * report["step_ms"] or phases["other"] == 0
    assert len(report["top_ops"]) == 5 and all(op["op"].startswith("aten::") for op in report["top_ops"][:1])
    assert json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    text = format_profile(report)
    assert "forward" in text and "top operators by own CPU time" in text
