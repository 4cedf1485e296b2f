"""The CUDA paths: mixed precision (bf16, and fp16 with its gradient scaler), fused attention
kernels, MeanFlow's JVP through attention, and DDP over NCCL. Skipped where torch sees no GPU (CI
has none); run them on a GPU machine with `python -m pytest -q tests/test_cuda.py` (the
Fashion-MNIST files found as for training: $T2I_DATA, the cache, or the Debian package)."""

import dataclasses
import os
import subprocess
import sys

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from t2i.data import load_fashion_mnist
from t2i.flow.fewstep import jvp
from t2i.models.dit import DiT
from t2i.pipeline import Pipeline
from t2i.sections import ModelConfig
from t2i.training.trainer import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(scope="module")
def tiny_data():
    return load_fashion_mnist("train", subset=64)


def _cuda(cfg, **train):
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, device="cuda", **train))


def _model(two_times=False, width=64, heads=2):
    model = DiT(ModelConfig(width=width, depth=2, heads=heads, patch_size=4), (1, 28, 28),
                text_dim=16, two_times=two_times)
    for p in model.parameters():  # adaLN-Zero's zeros would make every output (and JVP) zero
        torch.nn.init.normal_(p, std=0.05)
    return model.cuda()


def _inputs(n=4, dtype=torch.float32):
    x = torch.randn(n, 1, 28, 28, device="cuda", dtype=dtype)
    t = torch.rand(n, device="cuda", dtype=dtype) * 0.5
    tokens = torch.randn(n, 5, 16, device="cuda", dtype=dtype)
    mask = torch.tensor([[1, 1, 1, 0, 0]] * n, device="cuda").bool()
    return x, t, tokens, mask


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
@pytest.mark.parametrize("objective", ["flow", "meanflow"])
def test_mixed_precision_training_on_cuda(tmp_path, debug_config, tiny_data, precision, objective):
    """A few steps in each half precision: finite losses, fp32 master weights that move, the
    gradient scaler on for fp16 only; the checkpoint samples alike on the GPU and the CPU."""
    cfg = _cuda(debug_config.override([f"objective.kind={objective}"]), precision=precision,
                steps=12, batch_size=16, ckpt_every=0)
    trainer = Trainer(cfg, tmp_path, data=tiny_data, progress=False)
    assert trainer.dtype == (torch.bfloat16 if precision == "bf16" else torch.float16)
    assert trainer.scaler.is_enabled() == (precision == "fp16")
    before = [p.detach().clone() for p in trainer.networks.parameters()]
    losses = [trainer.train_step()["loss"] for _ in range(12)]
    assert all(torch.isfinite(torch.tensor(losses))), losses
    after = list(trainer.networks.parameters())
    assert all(p.dtype == torch.float32 for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    trainer.save()
    gpu = Pipeline.from_pretrained(tmp_path, device="cuda", precision="fp32")
    cpu = Pipeline.from_pretrained(tmp_path, device="cpu", precision="fp32")
    prompts = ["a bag", "a sneaker"]
    torch.testing.assert_close(gpu(prompts, seed=3).cpu(), cpu(prompts, seed=3), atol=2e-2, rtol=0)


def test_attention_runs_on_the_fused_kernels(debug_config):
    """In bf16 the self- and cross-attention (with its text padding mask) run on FlashAttention /
    memory-efficient kernels — with the math kernel excluded — and agree with it."""
    model = _model(width=128, heads=2)  # head dim 64
    x, t, tokens, mask = _inputs(dtype=torch.float32)
    with torch.autocast("cuda", dtype=torch.bfloat16), torch.no_grad():
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]):
            fused = model(x, t, tokens, mask)
        with sdpa_kernel(SDPBackend.MATH):
            math = model(x, t, tokens, mask)
    assert fused.dtype == torch.bfloat16
    torch.testing.assert_close(fused.float(), math.float(), atol=3e-2, rtol=3e-2)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_the_jvp_through_cuda_attention(dtype):
    """MeanFlow's JVP on the GPU: forward-mode AD through SDPA (the fused kernels have none, so
    `fewstep.jvp` runs the math kernel) equals a central difference in fp64, and runs under bf16
    autocast without falling back to a finite difference."""
    model = _model(two_times=True).to(torch.float64 if dtype == torch.float64 else torch.float32)
    x, t, tokens, mask = _inputs(dtype=torch.float64 if dtype == torch.float64 else torch.float32)
    s = t + 0.4
    v = torch.randn_like(x)
    fn = lambda x, t, s: model(x, t, tokens, mask, s)  # noqa: E731
    tangents = (v, torch.ones_like(t), torch.zeros_like(s))
    if dtype == torch.float64:
        out, exact = jvp(fn, (x, t, s), tangents)
        eps = 1e-6
        with torch.no_grad():
            approx = (fn(x + eps * v, t + eps, s) - fn(x - eps * v, t - eps, s)) / (2 * eps)
        assert out.requires_grad and exact.abs().max() > 1e-3
        torch.testing.assert_close(exact, approx, atol=1e-6, rtol=1e-4)
        return
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out, tangent = jvp(fn, (x, t, s), tangents)
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
            reference, _ = torch.func.jvp(fn, (x, t, s), tangents)
    assert out.requires_grad and torch.isfinite(tangent).all() and tangent.abs().max() > 1e-3
    torch.testing.assert_close(out.float(), reference.float(), atol=2e-2, rtol=2e-2)  # fused vs math, in bf16


@pytest.mark.parametrize("objective", ["flow", "meanflow"])
def test_ddp_over_nccl_matches_one_process(tmp_path, objective):
    """`torchrun --nproc_per_node 1` (NCCL, DDP of one process: MeanFlow's JVP pass inside DDP
    included) trains what a plain run does; only the process group differs."""
    from safetensors.torch import load_file

    from t2i.checkpoint import resolve_checkpoint

    common = ["--preset", "debug", "train.steps=4", "train.ckpt_every=0", "train.device=cuda",
              "train.precision=fp32", "train.batch_size=16", f"objective.kind={objective}",
              "objective.guidance=2"]
    env = {**os.environ, "NCCL_DEBUG": "INFO"}
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node=1", "-m", "t2i", "-q", "train", "--out",
                          str(tmp_path / "ddp"), *common],
                         capture_output=True, text=True, timeout=300, env=env)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "NCCL" in ddp.stdout + ddp.stderr  # the process group was NCCL's
    plain = subprocess.run([sys.executable, "-m", "t2i", "-q", "train", "--out",
                            str(tmp_path / "plain"), *common], capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0, plain.stderr[-3000:]
    a = load_file(resolve_checkpoint(tmp_path / "ddp") / "model.safetensors")
    b = load_file(resolve_checkpoint(tmp_path / "plain") / "model.safetensors")
    for name in b:
        torch.testing.assert_close(a[name], b[name], atol=1e-4, rtol=1e-3, msg=name)


def test_bench_on_cuda_measures_the_gpu(debug_config):
    """MFU on a GPU is against the GPU's own matmul peak (it was once the host CPU's: MFU 3.4)."""
    from t2i.training.bench import benchmark

    report = benchmark(_cuda(debug_config, batch_size=64), train_steps=5, sample_images=20)
    assert report["memory_measure"] == "CUDA max allocated"
    assert 0 < report["train_MFU"] < 1 and 0 < report["sample_MFU"] < 1, report


@pytest.mark.parametrize("route", ["latent", "bert"])
def test_latent_space_and_pretrained_text_on_cuda(tmp_path, debug_config, tiny_data, route, request):
    """The DiT trained in bf16 on the GPU in a (tiny, random) VAE's latent space, or on a
    pretrained text encoder's tokens (a tiny random BERT): the codec and the encoder run on the
    GPU beside it, and the checkpoint samples there."""
    if route == "latent":
        pytest.importorskip("diffusers")
        cfg = request.getfixturevalue("latent_config")
    else:
        pytest.importorskip("transformers")
        bert = request.getfixturevalue("tiny_text_models")["bert"]
        cfg = debug_config.override([f"text.encoder={bert}", f"data.cache_dir={tmp_path / 'cache'}"])
    cfg = _cuda(cfg, precision="bf16", steps=4, batch_size=8, ckpt_every=0)
    data = None if route == "latent" else tiny_data  # the latent route encodes its own cache
    trainer = Trainer(cfg, tmp_path / "run", data=data, progress=False)
    trainer.train()
    pipe = Pipeline.from_pretrained(tmp_path / "run", device="cuda")
    images = pipe(["a bag", "sneakers"], steps=2, num_per_prompt=2)
    assert images.shape == (4, 1, 28, 28) and torch.isfinite(images).all()


def test_trajectory_distillation_on_cuda(tmp_path):
    """A shortcut student distilled on the GPU in bf16 with teacher paths built there."""
    from t2i.cli import main

    teacher = tmp_path / "teacher"
    assert main(["-q", "train", "--preset", "debug", "--out", str(teacher), "train.steps=3",
                 "train.device=cuda"]) == 0
    assert main(["-q", "train", "--preset", "debug", "--out", str(tmp_path / "student"),
                 f"train.init={teacher}", "objective.kind=shortcut", "objective.step_grid=1,2",
                 "objective.trajectories=16", "objective.guidance=2", "train.steps=3",
                 "train.device=cuda", "train.precision=bf16"]) == 0
    pipe = Pipeline.from_pretrained(tmp_path / "student", device="cuda")
    assert torch.isfinite(pipe(["a bag"], steps=1, sampler="fewstep")).all()
