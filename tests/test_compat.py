"""Checkpoints written by earlier versions load and sample identically."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from t2i import Pipeline

FIXTURE = Path(__file__).parent / "fixtures" / "debug-v0.1.0"


@pytest.mark.parametrize("sampler", ["euler", "heun", "ddim", "ddpm"])
def test_v0_1_0_debug_checkpoint_samples_the_same_images(sampler):
    # Written by t2i 0.1.0 before the package was layered: `debug` trained 20 steps (config.json,
    # ema.safetensors, state.json), with the images it sampled then (expected_images.safetensors).
    expected = load_file(FIXTURE / "expected_images.safetensors")
    pipe = Pipeline.from_pretrained(FIXTURE, device="cpu", precision="fp32")
    images = pipe(["a bag", "sneakers", "a dress"], steps=4, cfg=3.0, seed=7, sampler=sampler,
                  num_per_prompt=2)
    torch.testing.assert_close(images, expected[sampler], rtol=0, atol=1e-6)
    unguided = pipe(["a coat"], steps=3, cfg=1.0, seed=1)
    torch.testing.assert_close(unguided, expected["cfg1"], rtol=0, atol=1e-6)
