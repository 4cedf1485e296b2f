import pytest

from t2i.config import Config
from t2i.presets import PRESETS, get_preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name):
    cfg = get_preset(name)
    assert cfg.preset == name
    assert Config.from_json(cfg.to_json()) == cfg


def test_unknown_preset():
    with pytest.raises(ValueError, match="fmnist"):
        get_preset("nope")


def test_fmnist_paper_matches_the_recipe():
    cfg = get_preset("fmnist-paper")
    assert (cfg.model.width, cfg.model.depth, cfg.model.num_heads, cfg.model.mlp_ratio) == (384, 12, 6, 4.0)
    assert (cfg.train.batch_size, cfg.train.grad_accum, cfg.train.lr, cfg.train.steps) == (128, 2, 1e-3, 8500)
    assert cfg.train.schedule == "constant" and cfg.train.ema_decay == 0.999
    assert cfg.objective.kind == "x0" and (cfg.objective.beta_a, cfg.objective.beta_b) == (1.0, 2.5)
    assert cfg.sample.steps == 25
    # Noise levels 0.01..0.99 in training, and sampling from noise level 0.99 down to 0.01.
    assert (cfg.objective.s_min, cfg.objective.s_max) == (0.01, 0.99)
    assert (cfg.sample.t_start, cfg.sample.t_end) == (0.01, 0.99)
    assert get_preset("fmnist-paper-latent").sample == cfg.sample


def test_flow_matching_preset_table():
    rows = {name: (get_preset(name).train.steps,
                   get_preset(name).train.batch_size * get_preset(name).train.grad_accum)
            for name in ("t2i2m-overfit", "t2i2m-hparam-tuning", "t2i2m-paper", "t2i2m-full-scale")}
    assert rows == {"t2i2m-overfit": (5000, 288), "t2i2m-hparam-tuning": (5000, 288),
                    "t2i2m-paper": (30000, 576), "t2i2m-full-scale": (300000, 576)}
    paper = get_preset("t2i2m-paper")
    assert paper.train.warmup_steps == 1500 and paper.train.lr == 5e-4 and paper.train.min_lr_ratio == 0.1
    assert (paper.model.width, paper.model.depth, paper.model.heads) == (768, 12, 12)
    assert paper.text.encoder.endswith("t5-small") and paper.text.max_length == 128
    # Warm-up from 10% of the max LR, t uniform: the design's recipe, not our presets' defaults.
    assert paper.train.warmup_start == 0.1 and paper.objective.t_sampling == "uniform"
    assert all(get_preset(n).train.warmup_start == 0.1 for n in rows)
    assert get_preset("fmnist").train.warmup_start == 0.0


def test_fmnist_tiny_matches_the_efficient_design():
    c = get_preset("fmnist-tiny")
    assert (c.model.width, c.model.depth, c.model.heads, c.model.patch_size) == (128, 3, 4, 2)
    assert c.model.width * c.model.mlp_ratio == 256 and c.model.attention == "linear"
    assert c.vae.resolution == 16 and not c.vae.name and c.objective.kind == "x0"
    assert (c.train.batch_size, c.train.lr, c.train.weight_decay, c.train.schedule) == (
        128, 3e-4, 0.05, "cosine_restarts")
    assert c.sample.steps == 10


def test_cifar_clip_is_the_educational_designs_phase_4():
    c = get_preset("cifar-clip")
    assert c.data.dataset == "cifar10" and c.data.captions == "photo" and "clip" in c.text.encoder
    assert c.model.backbone == "dit" and c.objective.kind == "flow" and c.text.cond_drop == 0.1


def test_latent_ddpm_is_the_latent_ddpm_design():
    c, vae = get_preset("latent-ddpm"), get_preset("latent-ddpm-vae")
    assert c.model.backbone == "unet" and c.objective.kind == "eps" and c.sample.sampler == "ddpm"
    assert c.vae.name == "runs/latent-ddpm-vae/vae" and c.vae.resolution == 64 and c.sample.cfg > 1
    # 64x64x3 -> 8x8x4: four levels, three halvings.
    assert vae.vae.resolution == 64 and len(vae.vae.channels.split(",")) == 4 and vae.vae.latent_channels == 4


def _cifar_folder(root):
    """CIFAR-10's batch files, 4 random images each."""
    import pickle

    import numpy as np

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 255, (4, 3072)).astype(np.uint8), b"labels": [0, 3, 5, 9]}
        (folder / name).write_bytes(pickle.dumps(batch))
    return root


TINY = ["model.depth=1", "model.heads=2", "train.steps=2", "train.batch_size=4", "train.device=cpu",
        "train.precision=fp32", "train.sample_every=0", "train.eval_every=0", "sample.steps=2"]


def test_cifar_clip_trains_and_samples_on_stand_ins(tmp_path, tiny_text_models):
    from t2i.pipeline import Pipeline
    from t2i.training.trainer import Trainer

    cfg = get_preset("cifar-clip").override(TINY + [
        "model.width=32", f"text.encoder={tiny_text_models['clip']}",
        f"data.data_dir={_cifar_folder(tmp_path / 'cifar')}", f"data.cache_dir={tmp_path / 'cache'}"])
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    assert trainer.data.classes.training_captions()[3] == ["a photo of a cat"]
    trainer.train()
    images = Pipeline.from_pretrained(tmp_path / "run")(["a photo of a cat"], num_per_prompt=2)
    assert images.shape == (2, 3, 32, 32)


def test_latent_ddpm_trains_and_samples_on_stand_ins(tmp_path, tiny_text_models, tiny_vae_dir):
    from t2i.pipeline import Pipeline
    from t2i.training.trainer import Trainer

    cfg = get_preset("latent-ddpm").override(TINY + [
        "model.width=16", "model.unet_channels=8,16", "model.layers_per_block=1",
        f"text.encoder={tiny_text_models['bert']}", "data.dataset=fashion-mnist", "data.subset=16",
        f"vae.name={tiny_vae_dir}", "vae.resolution=16", f"data.cache_dir={tmp_path / 'cache'}"])
    Trainer(cfg, tmp_path / "run", progress=False).train()
    pipe = Pipeline.from_pretrained(tmp_path / "run")
    assert pipe.config.sample.sampler == "ddpm" and pipe.objective.t_start > 0  # eps: off pure noise
    images = pipe(["a bag"], num_per_prompt=2)
    assert images.shape == (2, 1, 28, 28) and images.isfinite().all()
