import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from t2i.config import Config, VAEConfig
from t2i.presets import get_preset
from t2i.data import load_fashion_mnist
from t2i.pipeline import Pipeline
from t2i.train import Trainer
from t2i.codecs import AutoencoderCodec, IdentityCodec, load_codec, reconstruction_psnr
from t2i.vae_train import INFO_FILE, VAETrainer, build_autoencoder, measure_scale


@pytest.fixture(scope="module")
def images():
    return load_fashion_mnist("test").batch(torch.arange(64))[0]


def test_pixel_codec_can_resize(images):
    from t2i.codecs import IdentityCodec

    codec = IdentityCodec((1, 28, 28), resolution=16)
    small = codec.encode(images[:4])
    assert small.shape == (4, 1, 16, 16) and codec.latent_shape == (1, 16, 16)
    back = codec.decode(small)
    assert back.shape == (4, 1, 28, 28)
    assert (back - images[:4]).abs().mean() < 0.25  # blurrier, but the same images


def test_identity_codec_is_pixel_space(images):
    codec = load_codec(Config())
    assert isinstance(codec, IdentityCodec) and codec.latent_shape == (1, 28, 28)
    assert codec.decode(codec.encode(images)) is images


def test_tiny_vae_round_trip_shapes_range_and_determinism(images):
    vae = build_autoencoder(VAEConfig(channels="8,16,16", latent_channels=3), 1, 32)
    codec = AutoencoderCodec(vae.eval(), 1.0, (1, 28, 28), 32)
    z = codec.encode(images[:4])
    assert z.shape == (4, 3, 8, 8) and codec.latent_shape == (3, 8, 8)
    torch.testing.assert_close(codec.encode(images[:4]), z)  # the posterior mean, not a sample
    x = codec.decode(z)
    assert x.shape == (4, 1, 28, 28) and x.min() >= -1 and x.max() <= 1


def test_scale_factor_makes_latents_unit_variance(images):
    vae = build_autoencoder(VAEConfig(channels="8,16"), 1, 16).eval()
    codec = AutoencoderCodec(vae, 1.0, (1, 28, 28), 16)
    codec.scale = measure_scale(codec, images)
    assert codec.encode(images).std().item() == pytest.approx(1.0, rel=1e-3)


def test_pretrained_rgb_vae_loads_from_a_folder_and_handles_grayscale(tmp_path, images):
    vae = build_autoencoder(VAEConfig(channels="8,16", latent_channels=4), 3, 64)
    vae.register_to_config(scaling_factor=0.18215)
    vae.save_pretrained(str(tmp_path / "rgb-vae"))
    cfg = Config().override([f"vae.name={tmp_path / 'rgb-vae'}", "vae.resolution=16"])
    codec = load_codec(cfg)
    assert codec.scale == pytest.approx(0.18215)  # vae.scale=0 takes the VAE's own factor
    assert codec.latent_shape == (4, 8, 8)
    assert codec.decode(codec.encode(images[:2])).shape == (2, 1, 28, 28)
    assert load_codec(cfg.override(["vae.scale=2.0"])).scale == 2.0


def test_missing_vae_says_how_to_get_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="t2i vae train"):
        load_codec(Config().override([f"vae.name={tmp_path / 'nothing'}"]))


def test_vae_trainer_improves_reconstruction_exports_and_resumes(tmp_path, images):
    cfg = get_preset("fmnist-vae").override(
        ["vae.channels=8,16", "vae.resolution=16", "data.subset=256", "train.steps=40",
         "train.batch_size=32", "train.warmup_steps=2", "train.max_minutes=0",
         "train.ckpt_every=20", "train.sample_every=0", "train.lr=3e-3", "train.device=cpu"])
    trainer = VAETrainer(cfg, tmp_path, progress=False, eval_images=256)
    before = reconstruction_psnr(trainer.codec(), images)
    folder = trainer.train()
    info = json.loads((folder / INFO_FILE).read_text())
    codec = load_codec(Config().override([f"vae.name={folder}"]))
    assert codec.scale == pytest.approx(info["scaling_factor"])
    assert reconstruction_psnr(codec, images) > before + 3
    resumed = VAETrainer(cfg.override(["train.steps=45"]), tmp_path, resume="latest", progress=False,
                         eval_images=256)
    assert resumed.step == 40
    resumed.train()
    assert resumed.step == 45


@pytest.mark.parametrize("objective", ["flow", "x0"])
def test_debug_latent_run_trains_and_samples_end_to_end(tmp_path, latent_config, objective):
    config = latent_config.override([f"objective.kind={objective}"])
    trainer = Trainer(config, tmp_path / "run", progress=False)
    assert trainer.data.shape == (4, 8, 8)
    trainer.train()
    pipe = Pipeline.from_pretrained(tmp_path / "run")
    seen = []
    images = pipe(["a bag", "trousers"], steps=3, seed=0, sampler="heun",
                  callback=lambda i, t, x, x1: seen.append(pipe.decode(x1)))
    assert images.shape == (2, 1, 28, 28) and 0 <= images.min() and images.max() <= 1
    assert len(seen) == 3 and seen[0].shape == (2, 1, 28, 28)
    torch.testing.assert_close(pipe(["a bag"], steps=3, seed=0, sampler="heun"), images[:1])


def test_hub_id_loads_from_the_hub_cache_offline(tmp_path, tiny_vae_dir):
    """A hub id resolves through huggingface_hub's cache layout, as a downloaded VAE would;
    offline and uncached, it is a clear error rather than a hang or a traceback."""
    snapshot = tmp_path / "hub" / "models--someone--tiny-vae" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_vae_dir, snapshot)
    (tmp_path / "hub" / "models--someone--tiny-vae" / "refs").mkdir()
    (tmp_path / "hub" / "models--someone--tiny-vae" / "refs" / "main").write_text("0" * 40)
    script = ("from t2i.codecs import load_autoencoder\n"
              "print(load_autoencoder('someone/tiny-vae').config.latent_channels)\n"
              "try:\n    load_autoencoder('someone/absent-vae')\n"
              "except FileNotFoundError as e:\n    print('error:', e)\n")
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "4" and "could not load VAE 'someone/absent-vae'" in lines[1]
