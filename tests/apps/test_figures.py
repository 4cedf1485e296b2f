import pytest
from PIL import Image

from t2i.apps import figures
from t2i.presets import get_preset


def test_noise_levels_show_one_real_image_per_class_from_data_to_noise():
    img = figures.noise_levels(get_preset("debug"), levels=4)
    # 10 rows x 4 columns of 28x28 images at scale 3, 2-pixel padding, plus a 16-pixel title band.
    assert img.size == (3 * (2 + 4 * 30), 3 * (2 + 10 * 30) + 16)


def test_progression_grid_stacks_sample_grids_in_step_order(tmp_path):
    samples = tmp_path / "samples"
    samples.mkdir()
    for step, shade in ((1000, 200), (500, 100)):
        Image.new("L", (40, 20), shade).save(samples / f"step_{step:07d}.png")
    grid = figures.progression_grid(tmp_path)
    assert grid.size == (40, 2 * (10 + 16))  # top half of each grid under its title
    assert grid.getpixel((5, 16 + 5)) == 100 and grid.getpixel((5, 26 + 16 + 5)) == 200
    with pytest.raises(FileNotFoundError, match="sample_every"):
        figures.progression_grid(tmp_path / "nothing")


def test_denoising_strip_has_a_column_per_kept_step_and_the_result(tmp_path):
    from t2i.training.trainer import Trainer

    trainer = Trainer(get_preset("debug").override(["train.steps=1"]), tmp_path, progress=False)
    strip = figures.denoising_strip(trainer.pipeline(), ["a bag", "a shirt"], steps=4, columns=4)
    assert strip.size == (2 * (2 + 5 * 30), 2 * (2 + 2 * 30))


def test_checkpoint_progression_has_a_row_per_checkpoint_at_the_given_seed(tmp_path):
    import numpy as np

    from t2i.checkpoint import resolve_checkpoint
    from t2i.training.trainer import Trainer

    Trainer(get_preset("debug").override(["train.steps=4", "train.ckpt_every=2"]), tmp_path,
            progress=False).train()
    kept = [resolve_checkpoint(c) for c in sorted((tmp_path / "checkpoints").glob("step_*"))]
    assert [c.name for c in kept] == ["step_0000002", "step_0000004"]
    img = figures.checkpoint_progression(kept, seed=3, steps=2)
    # Two rows of ten 28x28 class images at scale 2, each under a 16-pixel title band.
    assert img.size == (2 * (2 + 10 * 30), 2 * (2 * (2 + 30) + 16))
    rows = np.asarray(img.convert("L"), dtype=float)
    assert np.abs(rows[16:80] - rows[96:160]).mean() > 0  # the weights differ between rows
    again = figures.checkpoint_progression(kept, seed=4, steps=2)
    assert np.abs(np.asarray(again.convert("L"), dtype=float) - rows).mean() > 0  # and the seed matters
