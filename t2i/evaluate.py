"""Measuring what we make: accuracy, FD and precision/recall in a Fashion-MNIST classifier's
feature space, sweeps, the README's results table, throughput and FLOP utilisation.

Protocol: for each of the ten class names as the prompt, generate N images (seeds 0..N-1, the
given steps / sampler / CFG scale; the report records them) and pass them through t2i's own CNN
(trained by `t2i eval train-classifier`, deterministic, weights shipped in t2i/assets with their
test accuracy). Reported:
- accuracy: the fraction classified as the prompted class, with the confusion matrix;
- FD: the Frechet distance between the classifier's penultimate features of the generated
  images and of the 10,000 test images (an FID with a Fashion-MNIST feature extractor);
- precision / recall: k-NN manifold estimates (k = 3) in the same feature space;
- the real-data floor: the same four numbers for as many real training images, because FD
  depends on the number of images and no generator should be expected to beat real data.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .config import Config
from .data import load_fashion_mnist
from .pipeline import Pipeline
from .runtime import matmul_flops

log = logging.getLogger(__name__)

ASSETS = Path(__file__).parent / "assets"
CLASSIFIER = "fmnist_classifier"


class Classifier(nn.Module):
    """A small CNN for 28x28 grayscale images in [-1, 1]; `features` is its penultimate layer."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),  # 7x7
            nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (B, 64)
        self.fc = nn.Sequential(nn.Linear(64, 128), nn.ReLU())
        self.head = nn.Linear(128, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
    model.eval()
    return torch.cat([model(images[i:i + batch]).argmax(1) for i in range(0, len(images), batch)])


def train_classifier(out_dir: str | Path, data_dir: Optional[str] = None, epochs: int = 8,
                     seed: int = 0, progress: bool = True) -> float:
    """Train the evaluation classifier deterministically; write weights + test accuracy."""
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    train, test = load_fashion_mnist("train", data_dir), load_fashion_mnist("test", data_dir)
    model = Classifier()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * (len(train) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    bar = tqdm(total=steps, disable=not progress, desc="classifier")
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(train))
        for i in range(0, len(perm) - 127, 128):
            x, y = train.batch(perm[i:i + 128])
            # Light augmentation (random shifts) keeps it from leaning on exact pixel positions.
            x = torch.roll(x, shifts=tuple(torch.randint(-2, 3, (2,)).tolist()), dims=(2, 3))
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    x, y = test.batch(torch.arange(len(test)))
    acc = (predict(model, x) == y).float().mean().item()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / f"{CLASSIFIER}.safetensors")
    (out / f"{CLASSIFIER}.json").write_text(json.dumps(
        {"test_accuracy": acc, "epochs": epochs, "seed": seed, "test_images": len(test)}, indent=2))
    return acc


def load_classifier(path: Optional[str | Path] = None) -> tuple[Classifier, dict]:
    from safetensors.torch import load_file

    root = Path(path) if path else ASSETS
    model = Classifier()
    model.load_state_dict(load_file(root / f"{CLASSIFIER}.safetensors"))
    meta = json.loads((root / f"{CLASSIFIER}.json").read_text())
    return model.eval(), meta


@torch.no_grad()
def features_and_predictions(classifier: Classifier, images: torch.Tensor,
                             batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's penultimate features (float64 [N, 128]) and predicted classes of images
    in [-1, 1]."""
    classifier.eval()
    feats, preds = [], []
    for i in range(0, len(images), batch):
        f = classifier.features(images[i:i + batch])
        feats.append(f.double())
        preds.append(classifier.head(f).argmax(1))
    return torch.cat(feats), torch.cat(preds)


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to feature sets a [N, D] and b [M, D]:
    |mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2)). The trace of the matrix square root is
    computed as sum(sqrt(eig(S C_b S))) with S = C_a^(1/2), which is symmetric, so no general
    (complex) sqrtm is needed."""
    a, b = a.double(), b.double()
    mu = a.mean(0) - b.mean(0)
    ca, cb = torch.cov(a.T), torch.cov(b.T)
    vals, vecs = torch.linalg.eigh(ca)
    sqrt_ca = vecs @ torch.diag(vals.clamp(min=0).sqrt()) @ vecs.T
    cross = torch.linalg.eigvalsh(sqrt_ca @ cb @ sqrt_ca).clamp(min=0).sqrt().sum()
    return (mu @ mu + ca.trace() + cb.trace() - 2 * cross).item()


def _kth_neighbour_radius(x: torch.Tensor, k: int, chunk: int = 2000) -> torch.Tensor:
    radii = []
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i:i + chunk], x)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # k + 1: the nearest is the point itself
    return torch.cat(radii)


def _covered(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor,
             chunk: int = 2000) -> torch.Tensor:
    """For each point, whether it lies in any ball (centre, radius)."""
    return torch.cat([(torch.cdist(points[i:i + chunk], centres) <= radii).any(1)
                      for i in range(0, len(points), chunk)])


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """k-NN manifold precision and recall (Kynkaanniemi et al. 2019): each set's manifold is the
    union of balls reaching every point's k-th nearest neighbour in that set. Precision is the
    fraction of generated points on the real manifold (are they realistic?); recall the
    fraction of real points on the generated manifold (is the variety covered?)."""
    precision = _covered(fake, real, _kth_neighbour_radius(real, k)).double().mean().item()
    recall = _covered(real, fake, _kth_neighbour_radius(fake, k)).double().mean().item()
    return precision, recall


class Reference:
    """The evaluation's fixed side: the classifier, the features of the reference split (the
    Fashion-MNIST test set) and, as the real-data floor, the same metrics for `n` real training
    images — what a perfect generator would score with that many images."""

    def __init__(self, n: int, data_dir: Optional[str] = None, k: int = 3, seed: int = 0,
                 reference_images: int = 10_000):
        self.classifier, self.meta = load_classifier()
        self.k = k
        test = load_fashion_mnist("test", data_dir)
        m = min(reference_images, len(test))
        self.images = test.batch(torch.arange(m))[0]  # in [-1, 1]; also Inception FID's real side
        self.features, _ = features_and_predictions(self.classifier, self.images)
        self.reference = f"fashion-mnist test ({m} images)"
        train = load_fashion_mnist("train", data_dir)
        idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]
        x, labels = train.batch(idx)
        self.floor = self.score(x, labels)

    @classmethod
    def for_pipeline(cls, pipe: Pipeline, n_per_class: int,
                     reference_images: int = 10_000) -> "Reference":
        """The reference for evaluating `pipe` with n_per_class images per class prompt."""
        if pipe.config.data.dataset != "fashion-mnist":
            raise ValueError(f"evaluation judges Fashion-MNIST models (its classifier and test set); "
                             f"this checkpoint was trained on {pipe.config.data.dataset}")
        return cls(n_per_class * len(pipe.classes), pipe.config.data.data_dir,
                   reference_images=reference_images)

    def score(self, images: torch.Tensor, labels: torch.Tensor) -> dict:
        """Accuracy, FD, precision and recall of images in [-1, 1] meant to show `labels`."""
        feats, preds = features_and_predictions(self.classifier, images)
        precision, recall = precision_recall(self.features, feats, self.k)
        return {"accuracy": (preds == labels).double().mean().item(),
                "fd": frechet_distance(feats, self.features),
                "precision": precision, "recall": recall, "predictions": preds}


PROMPT_SETS = ("names", "heldout")


def class_prompts(pipe: Pipeline, which: str = "names") -> list[list[str]]:
    """The prompts of each class: its display name ("names"), or its held-out paraphrases,
    never seen in training ("heldout"; only a pretrained text encoder understands those)."""
    if which not in PROMPT_SETS:
        raise ValueError(f"prompts must be one of {PROMPT_SETS}, not {which!r}")
    classes = pipe.classes
    return [[n] for n in classes.names] if which == "names" else [list(h) for h in classes.heldout]


def prompt_shares(options: list[str], n_per_class: int) -> list[tuple[str, int, int]]:
    """How a class's n_per_class images are shared evenly among its prompts: (prompt, first,
    count) for each, `first` counted within the class."""
    out, first = [], 0
    for i, prompt in enumerate(options):
        share = n_per_class // len(options) + (i < n_per_class % len(options))
        out.append((prompt, first, share))
        first += share
    return out


def generate_per_class(pipe: Pipeline, n_per_class: int, steps: int, cfg: float, sampler: str,
                       seed: int = 0, batch: int = 100,
                       sets: Optional[list[list[str]]] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n_per_class images for each class (seeds seed .. seed + n - 1), in [-1, 1], with their
    labels. `sets` holds each class's prompts (default: its name); a class with several prompts
    shares its images evenly among them (`prompt_shares`)."""
    sets = sets or class_prompts(pipe, "names")
    images = []
    for options in sets:
        for prompt, first, share in prompt_shares(options, n_per_class):
            for start in range(first, first + share, batch):
                k = min(batch, first + share - start)
                images.append(pipe([prompt], steps=steps, cfg=cfg, sampler=sampler,
                                   seed=seed + start, num_per_prompt=k) * 2 - 1)
    labels = torch.arange(len(sets)).repeat_interleave(n_per_class)
    return torch.cat(images), labels


def per_prompt_accuracy(sets: list[list[str]], n_per_class: int, labels: torch.Tensor,
                        preds: torch.Tensor) -> dict[str, float]:
    """Accuracy of each prompt, given images laid out as `generate_per_class` makes them."""
    out = {}
    for c, options in enumerate(sets):
        for prompt, first, share in prompt_shares(options, n_per_class):
            rows = slice(c * n_per_class + first, c * n_per_class + first + share)
            out[prompt] = (preds[rows] == labels[rows]).double().mean().item()
    return out


def evaluate_pipeline(pipe: Pipeline, reference: Reference, n_per_class: int = 100,
                      steps: int = 25, cfg: float = 3.0, sampler: str = "euler",
                      seed: int = 0, inception: bool = False, prompts: str = "names") -> dict:
    """The evaluation report of a pipeline (see the module doc for the protocol)."""
    names = pipe.classes.names
    sets = class_prompts(pipe, prompts)
    start = time.perf_counter()
    images, labels = generate_per_class(pipe, n_per_class, steps, cfg, sampler, seed, sets=sets)
    seconds = time.perf_counter() - start
    scores = reference.score(images, labels)
    preds = scores.pop("predictions")
    confusion = torch.zeros(len(names), len(names), dtype=torch.long)  # [prompted, predicted]
    confusion.index_put_((labels, preds), torch.ones_like(labels), accumulate=True)
    floor = {k: v for k, v in reference.floor.items() if k != "predictions"}
    fid, note = None, "not requested (t2i eval --inception)"
    if inception:
        fid, note = inception_fid(images, reference.images)
    return {
        "protocol": {"images": len(images), "n_per_class": n_per_class, "steps": steps,
                     "sampler": sampler, "cfg": cfg, "seed": seed,
                     "clip_x0": pipe.config.sample.clip_x0,
                     "prompts": prompts, "prompt_list": sets,
                     "reference": reference.reference,
                     "features": "t2i Fashion-MNIST classifier, penultimate layer (128-d)",
                     "precision_recall_k": reference.k,
                     "real_floor": f"{len(images)} random training images (seed 0) scored "
                                   "the same way"},
        **scores,
        "per_class": {n: c for n, c in zip(names, (confusion.diag() / n_per_class).tolist())},
        "per_prompt": per_prompt_accuracy(sets, n_per_class, labels, preds),
        "confusion": confusion.tolist(),
        "real_floor": floor,
        "inception_fid": fid, "inception_note": note,
        "sample_img_per_s": len(images) / seconds,
        "classifier_test_accuracy": reference.meta["test_accuracy"],
    }


def inception_fid(images: torch.Tensor, reference_images: torch.Tensor) -> tuple[Optional[float], str]:
    """Inception-v3 FID through torchmetrics when it and its weights can be had; otherwise
    None and the reason (offline machines carry on with the classifier-feature FD)."""
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
        fid = FrechetInceptionDistance(feature=2048, normalize=True)
        rgb = lambda x: ((x + 1) / 2).clamp(0, 1).expand(-1, 3, -1, -1)  # noqa: E731
        for i in range(0, len(reference_images), 500):
            fid.update(rgb(reference_images[i:i + 500]), real=True)
        for i in range(0, len(images), 500):
            fid.update(rgb(images[i:i + 500]), real=False)
        return fid.compute().item(), "torchmetrics FrechetInceptionDistance (2048-d, 299x299)"
    except Exception as e:  # missing package, weights download refused offline, ...
        return None, f"Inception FID unavailable here ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"


def evaluate_checkpoint(checkpoint: str | Path, n_per_class: int = 100, steps: int = 25,
                        cfg: float = 3.0, sampler: str = "euler", seed: int = 0,
                        inception: bool = False, reference_images: int = 10_000,
                        prompts: str = "names", clip_x0: bool = False) -> dict:
    """`t2i eval`: the report of a checkpoint, with what trained it (preset, steps, minutes)."""
    from .checkpoint import load_training_state, resolve_checkpoint

    ckpt = resolve_checkpoint(checkpoint)
    pipe = Pipeline.from_pretrained(ckpt)
    if clip_x0:
        pipe.config = pipe.config.override(["sample.clip_x0=true"])
    reference = Reference.for_pipeline(pipe, n_per_class, reference_images)
    report = evaluate_pipeline(pipe, reference, n_per_class, steps, cfg, sampler, seed, inception,
                               prompts)
    state, _ = load_training_state(ckpt)
    tc = pipe.config.train
    report["run"] = {"checkpoint": str(ckpt), "preset": pipe.config.preset,
                     "vae": pipe.config.vae.name or None, "text": pipe.config.text.encoder,
                     "steps": state["step"],
                     "train_minutes": state["elapsed"] / 60,
                     "train_img_per_s": state["step"] * tc.batch_size * tc.grad_accum / max(state["elapsed"], 1e-9)}
    return report


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def benchmark(config: Config, train_steps: int = 30, sample_images: int = 100,
              warmup: int = 3) -> dict:
    """Training and sampling throughput, with model FLOPs counted by torch's FlopCounterMode and
    compared with the best matmul peak (fp32 or bf16) measured here and now: MFU is the fraction of
    what this device could do at its fastest precision, whatever precision the run used."""
    from .train import Trainer

    device_peaks = {"fp32": matmul_flops(torch.float32), "bf16": matmul_flops(torch.bfloat16)}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, tmp, progress=False)
    tc = config.train
    for _ in range(warmup):
        trainer.train_step()
    start = time.perf_counter()
    for _ in range(train_steps):
        trainer.train_step()
    train_s = time.perf_counter() - start
    images = train_steps * tc.batch_size * tc.grad_accum
    train_ips = images / train_s

    def one_micro_batch():
        trainer.loss_on(*trainer.micro_batch(trainer.order.next(tc.batch_size),
                                             torch.rand(tc.batch_size))).backward()
    train_flops = count_flops(one_micro_batch) / tc.batch_size
    trainer.optimizer.zero_grad(set_to_none=True)

    pipe = trainer.pipeline()
    names = trainer.data.sample_prompts()
    per_prompt = max(1, sample_images // len(names))
    pipe(names[:1], num_per_prompt=2)  # warm-up
    start = time.perf_counter()
    pipe(names, num_per_prompt=per_prompt)
    sample_s = time.perf_counter() - start
    sample_ips = per_prompt * len(names) / sample_s
    sample_flops = count_flops(lambda: pipe(names[:1], num_per_prompt=1))
    precision = "bf16" if trainer.dtype == torch.bfloat16 else "fp32"
    peak = max(device_peaks.values())
    return {
        "preset": config.preset,
        "params_M": trainer.networks["backbone"].num_params() / 1e6,
        "precision": precision,
        "peak_fp32_GFLOPs": device_peaks["fp32"] / 1e9,
        "peak_bf16_GFLOPs": device_peaks["bf16"] / 1e9,
        "train_img_per_s": train_ips,
        "train_GFLOP_per_img": train_flops / 1e9,
        "train_MFU": train_ips * train_flops / peak,
        "sample_steps": config.sample.steps,
        "sample_cfg": config.sample.cfg,
        "sample_img_per_s": sample_ips,
        "sample_GFLOP_per_img": sample_flops / 1e9,
        "sample_MFU": sample_ips * sample_flops / peak,
    }


def default_report_path(report: dict) -> Path:
    """eval_<checkpoint>_<sampler><steps>_cfg<scale>[_heldout].json in the checkpoint's run
    directory."""
    ckpt, p = Path(report["run"]["checkpoint"]), report["protocol"]
    which = "" if p.get("prompts", "names") == "names" else f"_{p['prompts']}"
    return ckpt.parent.parent / f"eval_{ckpt.name}_{p['sampler']}{p['steps']}_cfg{p['cfg']:g}{which}.json"


SWEEP_FIELDS = ["sweep", "sampler", "steps", "nfe", "cfg", "accuracy", "fd", "precision", "recall"]


def sweep(checkpoint: str | Path, out: str | Path, n_per_class: int = 50,
          steps_list: tuple[int, ...] = (3, 5, 8, 13, 25, 50), samplers=("euler", "heun"),
          cfg_list: tuple[float, ...] = (1, 1.5, 2, 3, 4, 6), default_steps: int = 25,
          default_cfg: float = 3.0, seed: int = 0, progress: bool = True,
          reference_images: int = 10_000) -> list[dict]:
    """Quality against sampling cost (every sampler at every step count, at `default_cfg`) and
    against guidance (every CFG scale, Euler at `default_steps`). NFE counts velocity
    evaluations per image (Heun: 2 per step but 1 on the last; each is a CFG pair when
    guided). Writes sweep.csv and sweep.png (FD and accuracy against NFE and CFG)."""
    import csv

    from tqdm.auto import tqdm

    pipe = Pipeline.from_pretrained(checkpoint)
    reference = Reference.for_pipeline(pipe, n_per_class, reference_images)
    settings = [("nfe", s, n, default_cfg) for s in samplers for n in steps_list]
    settings += [("cfg", "euler", default_steps, c) for c in cfg_list]
    rows, done = [], {}  # both sweeps meet at (euler, default_steps, default_cfg): evaluate it once
    for kind, sampler, steps, cfg in tqdm(settings, desc="sweep", disable=not progress):
        if (sampler, steps, cfg) not in done:
            done[sampler, steps, cfg] = evaluate_pipeline(pipe, reference, n_per_class, steps,
                                                          cfg, sampler, seed)
        r = done[sampler, steps, cfg]
        rows.append({"sweep": kind, "sampler": sampler, "steps": steps,
                     "nfe": 2 * steps - 1 if sampler == "heun" else steps, "cfg": cfg,
                     **{k: r[k] for k in ("accuracy", "fd", "precision", "recall")}})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "sweep.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SWEEP_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    plot_sweep(rows, reference.floor["fd"], out / "sweep.png")
    return rows


def plot_sweep(rows: list[dict], fd_floor: float, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex="col")
    for sampler in sorted({r["sampler"] for r in rows if r["sweep"] == "nfe"}):
        sel = [r for r in rows if r["sweep"] == "nfe" and r["sampler"] == sampler]
        axes[0, 0].plot([r["nfe"] for r in sel], [r["fd"] for r in sel], "o-", label=sampler)
        axes[1, 0].plot([r["nfe"] for r in sel], [r["accuracy"] for r in sel], "o-", label=sampler)
    sel = [r for r in rows if r["sweep"] == "cfg"]
    axes[0, 1].plot([r["cfg"] for r in sel], [r["fd"] for r in sel], "o-", color="C2")
    axes[1, 1].plot([r["cfg"] for r in sel], [r["accuracy"] for r in sel], "o-", color="C2")
    for ax in axes[0]:
        ax.axhline(fd_floor, color="gray", ls="--", label="real-data floor")
        ax.set_ylabel("FD (lower is better)")
        ax.set_yscale("log")
    for ax in axes[1]:
        ax.set_ylabel("class accuracy")
    axes[1, 0].set_xlabel("NFE (velocity evaluations per image)")
    axes[1, 0].set_xscale("log")
    cfg_steps = sel[0]["steps"] if sel else ""
    axes[1, 1].set_xlabel(f"CFG scale (Euler, {cfg_steps} steps)")
    axes[0, 0].legend()
    axes[0, 0].set_title("quality vs sampling cost")
    axes[0, 1].set_title("quality vs guidance")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


RESULTS_BEGIN, RESULTS_END = "<!-- results:begin (t2i eval readme) -->", "<!-- results:end -->"


def results_table(reports: list[tuple[str, dict]]) -> str:
    """A Markdown table, one row per (file name, report), each figure beside its real floor."""
    head = ("| preset | prompts | CPU min | steps | train img/s | sampling | accuracy (real) "
            "| FD (real) | precision (real) | recall (real) | report |\n" + "|---" * 11 + "|\n")
    rows = []
    for name, r in reports:
        run, p, f = r["run"], r["protocol"], r["real_floor"]
        rows.append(
            f"| `{run['preset']}` | {p.get('prompts', 'names')} | {run['train_minutes']:.1f} | {run['steps']} | "
            f"{run['train_img_per_s']:.0f} | {p['sampler']} {p['steps']}, CFG {p['cfg']:g}, "
            f"N={p['images']} | {r['accuracy']:.1%} ({f['accuracy']:.1%}) | {r['fd']:.2f} "
            f"({f['fd']:.2f}) | {r['precision']:.3f} ({f['precision']:.3f}) | {r['recall']:.3f} "
            f"({f['recall']:.3f}) | {name} |")
    return head + "\n".join(rows) + "\n"


def update_readme(readme: str | Path, report_files: list[Path]) -> None:
    """Replace the README's results table (between its markers) with one made from reports."""
    readme = Path(readme)
    text = readme.read_text()
    if RESULTS_BEGIN not in text or RESULTS_END not in text:
        raise ValueError(f"{readme} has no results markers: add the lines {RESULTS_BEGIN} and "
                         f"{RESULTS_END} where the table goes")
    reports = [(f.name, json.loads(f.read_text())) for f in report_files]
    before, rest = text.split(RESULTS_BEGIN, 1)
    _, after = rest.split(RESULTS_END, 1)
    readme.write_text(before + RESULTS_BEGIN + "\n" + results_table(reports) + RESULTS_END + after)
