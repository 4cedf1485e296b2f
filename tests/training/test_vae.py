import json

import pytest
import torch

from t2i.codecs import AutoencoderCodec, load_codec, reconstruction_psnr
from t2i.config import Config
from t2i.data import load_fashion_mnist
from t2i.presets import get_preset
from t2i.sections import VAEConfig
from t2i.training.vae import INFO_FILE, VAETrainer, build_autoencoder, measure_scale


@pytest.fixture(scope="module")
def images():
    return load_fashion_mnist("test").batch(torch.arange(64))[0]


def test_scale_factor_makes_latents_unit_variance(images):
    vae = build_autoencoder(VAEConfig(channels="8,16"), 1, 16).eval()
    codec = AutoencoderCodec(vae, 1.0, (1, 28, 28), 16)
    codec.scale = measure_scale(codec, images)
    assert codec.encode(images).std().item() == pytest.approx(1.0, rel=1e-3)


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
    assert codec.scale == pytest.approx(info["scaling_factor"]) and info["psnr_split"] == "test"
    assert reconstruction_psnr(codec, images) > before + 3
    resumed = VAETrainer(cfg.override(["train.steps=45"]), tmp_path, resume="latest", progress=False,
                         eval_images=256)
    assert resumed.step == 40
    resumed.train()
    assert resumed.step == 45


def test_a_dataset_without_a_test_split_says_its_psnr_is_on_training_images(tmp_path, grey_folder):
    cfg = get_preset("fmnist-vae").override(
        ["vae.channels=8,16", "vae.resolution=16", "data.dataset=folder", f"data.data_dir={grey_folder}",
         "data.channels=1", "data.image_size=16", f"data.cache_dir={tmp_path / 'cache'}",
         "train.steps=2", "train.batch_size=4", "train.max_minutes=0", "train.ckpt_every=0",
         "train.sample_every=0", "train.device=cpu"])
    info = json.loads((VAETrainer(cfg, tmp_path / "run", progress=False, eval_images=8).train()
                       / INFO_FILE).read_text())
    assert info["psnr_split"] == "train" and info["test_psnr_db"] > 0


def test_vae_trainer_accumulates_gradients_on_the_shared_loop(tmp_path):
    cfg = get_preset("fmnist-vae").override(
        ["vae.channels=8,16", "vae.resolution=16", "data.subset=64", "train.steps=3",
         "train.batch_size=8", "train.grad_accum=2", "train.max_minutes=0", "train.log_every=1",
         "train.ckpt_every=0", "train.sample_every=0", "train.device=cpu"])
    trainer = VAETrainer(cfg, tmp_path, progress=False, eval_images=16)
    metrics = trainer.train_step()
    assert trainer.step == 1 and trainer.order.cursor == 16  # two micro-batches of 8
    assert metrics["psnr"] > 0 and metrics["grad_norm"] > 0
    trainer.train()
    assert trainer.step == 3 and (tmp_path / "tb").is_dir()
