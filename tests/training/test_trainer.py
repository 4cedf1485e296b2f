import dataclasses
import json
import math
import subprocess
import sys

import pytest
import torch

from t2i.data import load_fashion_mnist
from t2i.pipeline import Pipeline
from t2i.presets import get_preset
from t2i.training.trainer import Trainer
from t2i.utils import runtime


@pytest.fixture(scope="module")
def tiny_data():
    return load_fashion_mnist("train", subset=64)


def _with(cfg, **train):
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **train))


@pytest.mark.parametrize("compiled", [False, True])
def test_resume_continues_the_same_run_bit_for_bit(tmp_path, debug_config, tiny_data, compiled, monkeypatch):
    if compiled:
        if (problem := runtime._compile_problem()) is not None:  # CI installs g++
            pytest.skip(f"torch.compile cannot build kernels here ({problem})")
        monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    cfg = _with(debug_config, steps=6, ckpt_every=3, batch_size=8, compile=compiled)
    straight = Trainer(cfg, tmp_path / "a", data=tiny_data, progress=False)
    straight.train()
    interrupted = Trainer(cfg, tmp_path / "b", data=tiny_data, progress=False)
    for _ in range(3):
        interrupted.train_step()
    interrupted.save()  # ... and the process dies here
    resumed = Trainer(cfg, tmp_path / "b", resume="latest", data=tiny_data, progress=False)
    assert resumed.step == 3
    resumed.train()
    assert resumed.step == 6
    for (name, a), b in zip(straight.networks.state_dict().items(), resumed.networks.state_dict().values()):
        assert torch.equal(a, b), name
    for (name, a), b in zip(straight.ema.state_dict().items(), resumed.ema.state_dict().values()):
        assert torch.equal(a, b), name


def test_overfit_drives_the_loss_down(tmp_path):
    cfg = _with(get_preset("overfit"), device="cpu")
    trainer = Trainer(cfg, tmp_path, progress=False)
    first = sum(trainer.train_step()["loss"] for _ in range(5)) / 5
    for _ in range(cfg.train.steps - 10):
        trainer.train_step()
    last = sum(trainer.train_step()["loss"] for _ in range(5)) / 5
    assert last < 0.25 * first, (first, last)


def test_max_minutes_stops_training(tmp_path, debug_config, tiny_data):
    cfg = _with(debug_config, steps=10_000, max_minutes=0.02, ckpt_every=0)
    trainer = Trainer(cfg, tmp_path, data=tiny_data, progress=False)
    trainer.train()
    assert 0 < trainer.step < 10_000
    assert (tmp_path / "checkpoints" / "latest").is_file()
    assert list((tmp_path / "samples").glob("*.png"))
    assert list((tmp_path / "tb").iterdir())


def test_ema_tracks_the_model(tmp_path, debug_config, tiny_data):
    trainer = Trainer(debug_config, tmp_path, data=tiny_data, progress=False)
    trainer.train_step()
    # after one step the warm-up decay is 2/11: the EMA moved most of the way to the weights
    w = trainer.networks["backbone"].out.weight
    e = trainer.ema["backbone"].out.weight
    assert torch.count_nonzero(w) > 0
    torch.testing.assert_close(e, w * (1 - 2 / 11))


@pytest.mark.parametrize("objective", ["flow", "meanflow"])
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path, objective):
    """`t2i train --nproc 2` (torchrun, gloo) with batch 8 per process computes what one process
    computes with batch 16 — MeanFlow's JVP pass included; only rank 0 writes; its checkpoint
    resumes in one process."""

    from safetensors.torch import load_file

    from t2i.checkpoint import resolve_checkpoint
    from t2i.cli import main

    common = ["--preset", "debug", "train.steps=4", "train.ckpt_every=2", "train.device=cpu",
              "train.precision=fp32", "train.log_every=1", f"objective.kind={objective}",
              "objective.guidance=2"]
    two, one = tmp_path / "two", tmp_path / "one"
    out = subprocess.run([sys.executable, "-m", "t2i", "-q", "train", "--nproc", "2", "--out",
                          str(two), "train.batch_size=8", *common],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[:3000]  # the ranks' own errors come before torchrun's summary
    assert main(["-q", "train", "--out", str(one), "train.batch_size=16", *common]) == 0
    a = load_file(resolve_checkpoint(two) / "model.safetensors")
    b = load_file(resolve_checkpoint(one) / "model.safetensors")
    for name in b:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=1e-4, msg=name)
    assert len(list((two / "tb").iterdir())) == 1  # one event file: only rank 0 logs
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == [
        "latest", "step_0000002", "step_0000004"]
    if objective != "flow":
        return
    assert main(["-q", "train", "--out", str(two), "train.batch_size=16", *common[:-7],
                 "train.steps=6", "train.ckpt_every=2", "train.device=cpu", "train.precision=fp32",
                 "--resume", "latest"]) == 0
    assert (two / "checkpoints" / "latest").read_text().strip() == "step_0000006"


@pytest.mark.parametrize("encoder", ["none", "learned", "bert", "bert-bank"])
def test_each_text_encoder_trains_and_samples(tmp_path, debug_config, tiny_data, tiny_text_models,
                                              encoder):
    from t2i.pipeline import Pipeline

    name = str(tiny_text_models["bert"]) if encoder.startswith("bert") else encoder
    extra = []
    if encoder == "bert-bank":  # the text-generalisation levers together
        extra = ["data.captions=bank", "text.pooling=both", "text.noise=0.3"]
        tiny_data = dataclasses.replace(tiny_data, classes=tiny_data.classes.with_bank())
    cfg = _with(debug_config.override([f"text.encoder={name}", f"data.cache_dir={tmp_path / 'cache'}", *extra]),
                steps=3, batch_size=8)
    trainer = Trainer(cfg, tmp_path / "run", data=tiny_data, progress=False)
    before = [p.clone() for p in trainer.networks.parameters()]
    trainer.train()
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.networks.parameters()))
    pipe = Pipeline.from_pretrained(tmp_path / "run", device="cpu")
    prompts = ["a bag", "Sneaker"] if encoder == "learned" else ["shoes for running", ""]
    images = pipe(prompts, steps=2, num_per_prompt=2)
    assert images.shape == (4, 1, 28, 28) and torch.isfinite(images).all()
    if encoder.startswith("bert"):  # the caption set was encoded once and cached
        assert trainer.text_cache["captions"] > (2000 if encoder == "bert-bank" else 100)
        assert len(list((tmp_path / "cache" / "text").glob("text-*.safetensors"))) == 1


def test_captioned_folder_trains_with_a_pretrained_encoder(tmp_path, debug_config, tiny_text_models):

    from PIL import Image

    from t2i.pipeline import Pipeline

    folder = tmp_path / "pics"
    folder.mkdir()
    colours = ["red", "blue", "green", "white"]
    for c in colours:
        Image.new("RGB", (24, 20), c).save(folder / f"{c}.png")
    (folder / "captions.jsonl").write_text("".join(json.dumps({"file": f"{c}.png", "caption": f"a {c} photo"}) + "\n"
                                                   for c in colours))
    cfg = _with(debug_config.override([
        "data.dataset=folder", f"data.data_dir={folder}", "data.image_size=16", "data.subset=0",
        f"data.cache_dir={tmp_path / 'cache'}", f"text.encoder={tiny_text_models['bert']}",
        "model.patch_size=4", "data.holdout=1"]), steps=3, batch_size=4, eval_every=2)
    trainer = Trainer(cfg, tmp_path / "run", progress=False)
    assert len(trainer.data) == 3  # one image held out for the validation loss
    trainer.train()
    assert (tmp_path / "run" / "samples").is_dir()  # the final grid used the dataset's captions
    # No judge for a folder: evaluation during training is the validation loss, at steps 2 and 3.
    lines = [json.loads(line) for line in (tmp_path / "run" / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [2, 3]
    assert all(math.isfinite(r["val_loss"]) and "fd" not in r for r in lines)
    assert set(lines[0]) >= {"val_loss_t0.2", "val_loss_t0.8", "minutes"}
    pipe = Pipeline.from_pretrained(tmp_path / "run", device="cpu")
    assert pipe(["a photo of a long coat"], steps=2).shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="free-form captions"):
        pipe.default_prompts()


def test_debug_trains_on_emoji_evaluates_and_samples(tmp_path, tiny_text_models, emoji_font):
    cfg = _with(get_preset("debug").override([
        "data.dataset=emoji", "data.image_size=28", "data.subset=64", f"data.cache_dir={tmp_path}",
        f"text.encoder={tiny_text_models['bert']}"]), steps=4, eval_every=4, eval_n_per_class=1)
    Trainer(cfg, tmp_path / "run", progress=False).train()
    record = json.loads((tmp_path / "run" / "eval.jsonl").read_text().splitlines()[0])
    assert record["step"] == 4 and 0 <= record["colour_accuracy"] <= 1
    assert record["real_floor"]["group_accuracy"] > 0.8
    pipe = Pipeline.from_pretrained(tmp_path / "run", device="cpu")
    images = pipe(["a purple heart", "a smiling cat"], steps=2)
    assert images.shape == (2, 3, 28, 28) and torch.isfinite(images).all()


@pytest.mark.parametrize("overrides, sampler", [
    (["model.backbone=unet", "model.width=32", "model.unet_channels=16,32"], "euler"),
    (["model.attention=linear", "vae.resolution=14", "objective.kind=x0"], "heun"),
    (["objective.kind=eps"], "ddim"),
    (["objective.kind=v"], "ddpm"),
], ids=["unet", "linear-attention-14px", "eps-ddim", "v-ddpm"])
def test_each_backbone_and_objective_trains_and_samples(tmp_path, debug_config, tiny_data,
                                                        overrides, sampler):
    from t2i.pipeline import Pipeline

    cfg = _with(debug_config.override(overrides + [f"sample.sampler={sampler}"]), steps=3, batch_size=8)
    trainer = Trainer(cfg, tmp_path / "run", data=tiny_data, progress=False)
    losses = [trainer.train_step()["loss"] for _ in range(3)]
    assert all(math.isfinite(v) for v in losses)
    trainer.save()
    pipe = Pipeline.from_pretrained(tmp_path / "run", device="cpu")
    images = pipe(["a bag", "a dress"], steps=3, num_per_prompt=2)
    assert images.shape == (4, 1, 28, 28) and torch.isfinite(images).all()  # decoded to 28x28


@pytest.mark.parametrize("objective", ["flow", "x0", "xflow"])
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


@pytest.mark.parametrize("kind", ["meanflow", "shortcut"])
def test_a_few_step_model_trains_and_samples_in_one_step(tmp_path, kind):
    from t2i.cli import main

    run = tmp_path / "run"
    assert main(["-q", "train", "--preset", "debug", "--out", str(run), "train.steps=3",
                 f"objective.kind={kind}", "objective.guidance=2", "sample.sampler=fewstep"]) == 0
    assert main(["-q", "sample", "--checkpoint", str(run), "--steps", "1", "--prompt", "a bag",
                 "--out", str(tmp_path / "bag")]) == 0
    assert (tmp_path / "bag" / "grid.png").is_file()
    pipe = Pipeline.from_pretrained(run, device="cpu")
    calls = []
    pipe.networks["backbone"].register_forward_hook(lambda *a: calls.append(1))
    images = pipe(["a bag", "Sneaker"], steps=1, num_per_prompt=2, cfg=1.0)
    assert images.shape == (4, 1, 28, 28) and torch.isfinite(images).all()
    assert len(calls) == 1  # one network evaluation for the whole batch
    guided = pipe(["a bag"], steps=2, cfg=3.0)  # plain CFG on the average velocity works too
    assert torch.isfinite(guided).all()


def test_the_fewstep_sampler_refuses_a_flow_model(tmp_path, debug_config, tiny_data):
    Trainer(_with(debug_config, steps=1), tmp_path, data=tiny_data, progress=False).train()
    with pytest.raises(ValueError, match="few-step objective"):
        Pipeline.from_pretrained(tmp_path, device="cpu")(["a bag"], steps=1, sampler="fewstep")


def test_a_flow_checkpoint_initialises_and_teaches_a_few_step_run(tmp_path, debug_config, tiny_data):
    flow = _with(debug_config, steps=3, batch_size=8)
    Trainer(flow, tmp_path / "flow", data=tiny_data, progress=False).train()
    few = _with(flow.override(["objective.kind=meanflow", "objective.guidance=2"]),
                init=str(tmp_path / "flow"))
    student = Trainer(few, tmp_path / "few", data=tiny_data, progress=False)
    teacher = Pipeline.from_pretrained(tmp_path / "flow", device="cpu", precision="fp32")
    assert student.teacher is not None
    # The interval embedding starts at zero: for any interval the student is the teacher.
    x, t = torch.randn(4, 1, 28, 28), torch.rand(4) * 0.5
    tokens, mask = teacher.networks["text"].encode(["a bag"] * 4)
    torch.testing.assert_close(student.networks["backbone"](x, t, tokens, mask, t + 0.5),
                               teacher.velocity(x, t, tokens, mask))
    student.train()
    assert student.step == 3
    own = Trainer(_with(few.override(["objective.distill=false"]), init=str(tmp_path / "flow")),
                  tmp_path / "own", data=tiny_data, progress=False)
    assert own.teacher is None  # fine-tuning on x - noise, guided by its own unconditional
    with pytest.raises(ValueError, match="differ"):
        Trainer(few.override(["model.depth=3"]), tmp_path / "bad", data=tiny_data, progress=False)


def test_resume_refuses_a_model_field_the_command_line_contradicts(tmp_path, debug_config, tiny_data, caplog):
    cfg = _with(debug_config, steps=2, ckpt_every=2, batch_size=8)
    Trainer(cfg, tmp_path, data=tiny_data, progress=False).train()
    wider = cfg.override(["model.width=64"])
    with pytest.raises(ValueError, match=r"model.width=32 \(not 64\)"):
        Trainer(wider, tmp_path, resume="latest", data=tiny_data, progress=False,
                explicit={"model.width"})
    # Not set on the command line (a preset's newer default): a warning naming both values.
    with caplog.at_level("WARNING"):
        resumed = Trainer(wider, tmp_path, resume="latest", data=tiny_data, progress=False,
                          explicit={"train.lr"})
    assert resumed.config.model.width == 32
    assert "model.width=32 from the checkpoint (this run's config says 64)" in caplog.text


def test_one_writer_per_run_directory(tmp_path, debug_config, tiny_data):
    from t2i.utils.fsutil import InUse, Lock

    with Lock(tmp_path, what="run directory"):  # another run holds it
        with pytest.raises(InUse, match="is in use by process"):
            Trainer(_with(debug_config, steps=1), tmp_path, data=tiny_data, progress=False)
    Trainer(_with(debug_config, steps=1), tmp_path, data=tiny_data, progress=False).train()


def test_a_full_disk_while_saving_keeps_the_last_good_checkpoint(tmp_path, debug_config, tiny_data, monkeypatch):
    import errno

    import t2i.checkpoint
    from t2i.checkpoint import resolve_checkpoint

    trainer = Trainer(_with(debug_config, steps=4, ckpt_every=2, batch_size=8), tmp_path, data=tiny_data,
                      progress=False)
    real = t2i.checkpoint.save_file

    def filling(tensors, path):
        if trainer.step == 4 and path.name == "ema.safetensors":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(tensors, path)
    monkeypatch.setattr(t2i.checkpoint, "save_file", filling)
    with pytest.raises(OSError, match="no space left on the device writing the checkpoint of step 4 .* "
                                      "the last good checkpoint is .*step_0000002"):
        trainer.train()
    assert resolve_checkpoint(tmp_path).name == "step_0000002"  # loadable, and latest
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest", "step_0000002"]
