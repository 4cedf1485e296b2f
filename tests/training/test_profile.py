import json
import tempfile

import pytest
from torch.utils.flop_counter import FlopCounterMode

from t2i.training.profile import PHASES, format_profile, product_floor, profile_training
from t2i.training.trainer import Trainer


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
    assert report["products"]["GFLOP"] > 0 and report["unprofiled_step_ms"] > 0
    text = format_profile(report)
    assert "forward" in text and "top operators by own CPU time" in text and "matrix products alone" in text


def test_the_product_floor_replays_every_matrix_product_of_a_step(debug_config, tmp_path):
    """The products replayed are the step's: their FLOPs are what torch's FLOP counter gives the
    matrix products of a forward and backward pass (the optimizer and EMA have none)."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(debug_config, tmp, progress=False)
    trainer.train_step()
    with FlopCounterMode(display=False) as counter:
        trainer.forward_backward()
    counted = sum(flops for op, flops in counter.get_flop_counts()["Global"].items()
                  if op.__name__.split(".")[0] in ("mm", "addmm", "bmm", "baddbmm"))
    floor = product_floor(trainer, seconds=0.001)
    assert floor["GFLOP"] * 1e9 == pytest.approx(counted, rel=1e-9) and counted > 0
    assert floor["calls"] >= floor["kinds"] > 3 and floor["ms"] > 0
