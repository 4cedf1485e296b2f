"""The web demo: type a prompt, watch the image form.

`t2i demo` serves a Gradio app over one `Pipeline`. A generation runs the sampler in a worker
thread whose per-step callback decodes the current clean-image prediction every `every` steps
and hands it over a queue; the request's generator yields those frames as Gradio streams them
to the browser, then the final grid. Inputs are checked on the server against `Limits` (a
visible message, never a stack trace), and Gradio's queue is bounded: at most `concurrency`
generations run at once and at most `queue_size` wait, so a crowd is served in turn instead of
exhausting memory. This module imports only the pipeline side of t2i.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import queue
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import torch
from PIL import Image

from ..checkpoint import SHIPPED, shipped_models
from ..flow.samplers import SAMPLERS
from ..pipeline import Pipeline
from ..text.prompts import clean_prompt
from ..utils.images import make_grid
from .explain import Explainer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What one demo request may ask for, checked on the server, and how many are served at once."""
    max_steps: int = 100
    max_images: int = 16
    max_prompt_chars: int = 300
    max_seed: int = 2**31 - 1
    max_cfg: float = 20.0
    concurrency: int = 1  # generations at once: one saturates a 2-core CPU
    queue_size: int = 64  # waiting requests beyond which new ones are turned away


class Cancelled(Exception):
    """Raised in the sampler's callback to stop a generation nobody waits for any more."""


@dataclass(frozen=True)
class Request:
    """One validated demo request: what `Pipeline.__call__` is asked for."""
    prompt: str
    steps: int
    cfg: float
    seed: int
    sampler: str
    images: int
    every: int


def validate(prompt, steps, cfg, seed, sampler, images, every, limits: Limits = Limits()) -> Request:
    """The request, or a ValueError whose message tells the user what to change."""
    prompt = clean_prompt(prompt or "", limit=limits.max_prompt_chars)

    def integer(value, name, low, high):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, not {value!r}.") from None
        if number != int(number) or not low <= number <= high:
            raise ValueError(f"{name} must be a whole number from {low} to {high}, not {value}.")
        return int(number)
    steps = integer(steps, "Steps", 1, limits.max_steps)
    seed = integer(seed, "Seed", 0, limits.max_seed)
    images = integer(images, "Number of images", 1, limits.max_images)
    every = integer(every, "Update interval", 1, limits.max_steps)
    try:
        cfg = float(cfg)
    except (TypeError, ValueError):
        raise ValueError(f"CFG scale must be a number, not {cfg!r}.") from None
    if not 1.0 <= cfg <= limits.max_cfg:
        raise ValueError(f"CFG scale must be from 1 to {limits.max_cfg:g}, not {cfg:g}.")
    if sampler not in SAMPLERS:
        raise ValueError(f"Sampler must be one of {', '.join(SAMPLERS)}, not {sampler!r}.")
    return Request(prompt, steps, cfg, seed, sampler, images, every)


def newest_checkpoint(root: str | Path = "runs") -> Path:
    """The run under `root` whose latest checkpoint is newest; with none, the first model
    shipped inside t2i (so `t2i demo` works before any training), else a FileNotFoundError that
    says how to train one."""
    runs = [p.parent.parent for p in Path(root).glob("*/checkpoints/latest")]
    if runs:
        return max(runs, key=lambda r: (r / "checkpoints" / "latest").stat().st_mtime)
    shipped = shipped_models()
    if shipped:
        log.info("no checkpoint under %s: serving the shipped model %s", root, shipped[0])
        return SHIPPED / shipped[0]
    raise FileNotFoundError(f"no checkpoint under {Path(root).resolve()}: train one first, e.g. "
                            "`t2i train --preset fmnist-text` (10 CPU minutes), or pass "
                            "--checkpoint DIR")


def grid(images: torch.Tensor, width: int = 448) -> Image.Image:
    """A near-square grid, upscaled (nearest) to about `width` pixels: 28x28 images are tiny."""
    ncol = math.ceil(math.sqrt(len(images)))
    return make_grid(images, ncol=ncol, scale=max(1, width // (images.shape[-1] * ncol)))


class Demo:
    """Generation with intermediate frames, independent of Gradio (tested without it)."""

    def __init__(self, pipe: Pipeline, limits: Limits = Limits(), sampling: Optional[dict] = None):
        self.pipe = pipe
        self.limits = limits
        # The app's initial steps / cfg / sampler / seed, and clip_x0, cfg_interval, retrieve,
        # dictionary and shift for every request; a None (or a missing key) means the
        # checkpoint's own setting.
        sampling = {k: v for k, v in (sampling or {}).items() if v is not None}
        self.initial = {**dataclasses.asdict(pipe.config.sample), "seed": 0, **sampling}
        self._explainer: Optional[Explainer] = None

    def explains(self) -> bool:
        """Whether `explain` has something to say: a pretrained encoder on labelled data."""
        return self.pipe.networks["text"].prompts == "free text" and self.pipe.classes is not None

    def explain(self, prompt: str, k: int = 3) -> str:
        """Markdown: the classes and training captions nearest the prompt in the text encoder's
        space (see explain.py), or "" where the model has nothing to explain."""
        if not self.explains() or not prompt.strip():
            return ""
        if self._explainer is None:  # embeds the training captions once
            self._explainer = Explainer(self.pipe)
        e = self._explainer.explain([prompt], k)[0]
        classes = ", ".join(f"{name} {sim:.2f}" for name, sim in e.classes[:3])
        nearest = "; ".join(f"“{cap}” ({name}, {sim:.2f})" for cap, name, sim in e.nearest)
        how = f"**Looked up:** {e.reading()}  \n" if e.reading() else ""
        words = "".join(f"**Dictionary:** {w}  \n" for w in e.words)
        return f"{how}{words}**Read as:** {classes}  \n**Nearest training captions:** {nearest}"

    def samplers(self) -> list[str]:
        """The samplers this model can use: `fewstep` only for a few-step model."""
        return [name for name in SAMPLERS if name != "fewstep" or self.pipe.objective.few_step]

    def examples(self) -> list[str]:
        """Class names; with a pretrained encoder, held-out paraphrases for half the classes;
        a captioned dataset's example prompts (emoji: "a purple heart"), if it has any."""
        classes = self.pipe.classes
        if classes is None:
            try:
                return self.pipe.default_prompts()
            except ValueError:
                return []
        if self.pipe.networks["text"].prompts != "free text":
            return list(classes.names)
        half = len(classes) // 2
        return [*classes.names[:half], *(h[0] for h in classes.heldout[half:])]

    def stream(self, request: Request) -> Iterator[tuple[Image.Image, str]]:
        """(image, status) pairs: an intermediate grid every `request.every` steps, then the
        final one. The prompt is checked (a class encoder knows only class names) before any
        work starts."""
        self.pipe.networks["text"].tokenize([request.prompt])  # raises ValueError if unknown
        frames: queue.Queue = queue.Queue()
        done, cancelled = object(), threading.Event()
        start = time.perf_counter()

        def callback(i, t, x, x1):
            if cancelled.is_set():  # the client left: stop within a step, free the CPU
                raise Cancelled
            if (i + 1) % request.every == 0 and i + 1 < request.steps:
                frames.put((i + 1, self.pipe.decode(x1)))

        def work():
            try:
                frames.put((request.steps, self.pipe(
                    [request.prompt], steps=request.steps, cfg=request.cfg, seed=request.seed,
                    sampler=request.sampler, num_per_prompt=request.images, callback=callback,
                    clip_x0=self.initial["clip_x0"], cfg_interval=self.initial.get("cfg_interval"),
                    retrieve=self.initial["retrieve"], dictionary=self.initial["dictionary"],
                    shift=self.initial["shift"])))
            except Exception as e:  # reported to the user by the generator below
                frames.put(e)
            frames.put(done)
        threading.Thread(target=work, daemon=True).start()
        grounded = f", grounded on {self.initial['retrieve']} captions" if self.initial["retrieve"] else ""
        try:
            while (item := frames.get()) is not done:
                if isinstance(item, Exception):
                    raise item
                step, images = item
                seconds = time.perf_counter() - start
                final = step == request.steps
                status = (f"done: {request.images} image(s), {request.steps} {request.sampler} "
                          f"steps, CFG {request.cfg:g}{grounded}, seed {request.seed}, {seconds:.2f} s"
                          if final else f"step {step}/{request.steps} ({seconds:.2f} s)")
                yield grid(images), status
        finally:  # also when the consumer stops early (Gradio closes the generator)
            cancelled.set()


def build_app(demo: Demo):
    import gradio as gr

    pipe, limits, initial = demo.pipe, demo.limits, demo.initial
    understood = pipe.networks["text"].prompts
    if understood == "class names":
        hint = "This model knows class names only: " + ", ".join(pipe.classes.names)
    elif understood == "ignored":
        hint = "This model is unconditional: the prompt is ignored."
    else:
        hint = "Free text: describe what to draw."

    def generate(prompt, steps, cfg, seed, sampler, images, every):
        try:
            request = validate(prompt, steps, cfg, seed, sampler, images, every, limits)
            yield from demo.stream(request)
        except ValueError as e:
            raise gr.Error(str(e), print_exception=False) from None

    # Every streamed frame becomes a file in Gradio's cache: delete those older than an hour,
    # hourly, so a long-running demo does not fill the disk.
    with gr.Blocks(title="t2i", delete_cache=(3600, 3600)) as app:
        gr.Markdown(f"## t2i — {pipe.config.preset}\nType a prompt and watch the image form "
                    f"from noise. {hint}")
        with gr.Row():
            with gr.Column():
                examples = demo.examples()
                prompt = gr.Textbox(label="Prompt", value=examples[0] if examples else "", max_lines=2,
                                    max_length=limits.max_prompt_chars, elem_id="prompt")
                button = gr.Button("Generate", variant="primary", elem_id="generate")
                if examples:
                    gr.Examples(examples, inputs=prompt)
                with gr.Accordion("Settings", open=False):
                    steps = gr.Slider(1, limits.max_steps, value=initial["steps"], step=1, label="Steps")
                    cfg = gr.Slider(1, limits.max_cfg, value=initial["cfg"], step=0.5, label="CFG scale")
                    seed = gr.Number(initial["seed"], label="Seed", precision=0, minimum=0, maximum=limits.max_seed)
                    sampler = gr.Radio(demo.samplers(), value=initial["sampler"], label="Sampler")
                    images = gr.Slider(1, limits.max_images, value=4, step=1, label="Images")
                    every = gr.Slider(1, 25, value=1, step=1, label="Update every N steps")
            with gr.Column():
                image = gr.Image(label="Image", type="pil", format="png", elem_id="result",
                                 interactive=False, height=460)
                status = gr.Markdown(elem_id="status")
                understood = gr.Markdown(elem_id="understood", visible=demo.explains())
        inputs, outputs = [prompt, steps, cfg, seed, sampler, images, every], [image, status]
        button.click(generate, inputs, outputs, api_name="generate",
                     concurrency_limit=limits.concurrency)
        prompt.submit(generate, inputs, outputs, api_name=False,  # Enter in the prompt box
                      concurrency_limit=limits.concurrency)
        if demo.explains():  # what the text encoder made of the prompt, beside the image
            for event in (button.click, prompt.submit):
                event(demo.explain, prompt, understood, api_name=False)
    app.queue(max_size=limits.queue_size, default_concurrency_limit=limits.concurrency)
    return app


def serve(checkpoint: Optional[str], host: str = "127.0.0.1", port: int = 7860, share: bool = False,
          device: str = "auto", limits: Limits = Limits(), block: bool = True,
          sampling: Optional[dict] = None, compile: bool = False):
    """Load the checkpoint (default: the newest run under runs/) and serve the app; `sampling`
    as for `Demo`; `compile` as for `Pipeline`."""
    path = Path(checkpoint) if checkpoint else newest_checkpoint()
    pipe = Pipeline.from_pretrained(path, device=device, compile=compile)
    if compile:  # compile before the first visitor waits for it: two sizes, so shapes go dynamic
        log.info("compiling before serving: two small generations")
        for n in (1, 2):
            pipe(pipe.default_prompts()[:1], steps=2, num_per_prompt=n)
    app = build_app(Demo(pipe, limits, sampling))
    app.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=not block,
               show_error=True)
    return app


def _rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc; 0 where unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def load_test(url: str, requests: int = 20, prompt: str = "", steps: int = 10, images: int = 1,
              every: int = 5, timeout: float = 600.0) -> dict:
    """Fire `requests` generations at once at a running demo through its API (Gradio's client)
    and wait for all, at most `timeout` seconds: latency percentiles (submit to final image),
    errors, frames streamed per request, and this process's memory before and after (the server
    must run in this process for that to mean anything: `t2i demo --load-test`)."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    rss_before = _rss_mb()
    start = time.perf_counter()
    submitted = []
    for k in range(requests):
        submitted.append((time.perf_counter(), client.submit(prompt, steps, 3.0, k, "euler", images,
                                                             every, api_name="/generate")))
    latencies, errors, frames = [], [], []
    for t0, job in submitted:
        try:
            job.result(timeout=max(1.0, timeout - (time.perf_counter() - start)))
            latencies.append(time.perf_counter() - t0)
            frames.append(len(job.outputs()))
        except Exception as e:  # a failed or timed-out request is counted, not raised
            errors.append(f"{type(e).__name__}: {e}")
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    return {"requests": requests, "completed": len(latencies), "errors": errors,
            "wall_s": time.perf_counter() - start,
            "latency_s": {"p50": q[49], "p90": q[89], "p99": q[98], "max": max(latencies)} if latencies else {},
            "frames_per_request": min(frames) if frames else 0,
            "rss_mb_before": rss_before, "rss_mb_after": _rss_mb()}
