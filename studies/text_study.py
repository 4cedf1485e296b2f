"""Held-out prompts (docs/studies/text.md): each prompt's accuracy over an arm's seeds, and a grid of
the prompts drawn by one checkpoint.

    # per-prompt accuracy (mean over the seeds' reports), class by class, worst ten first
    python studies/text_study.py prompts --dir study --arm bankf-sentence --set paraphrases
    python studies/text_study.py prompts --reports A/eval_paraphrases.json B/eval_paraphrases.json
    # one row per class, one column per held-out prompt (first seed)
    python studies/text_study.py grid --checkpoint RUN --set paraphrases --out grid.png
    # what the text side alone allows: development and held-out prompts classified from the
    # encoder's sentence embeddings by their nearest training caption and by a linear probe
    python studies/text_study.py ceiling [--encoder HUB_ID_OR_FOLDER]
    # choosing sample.retrieve (and its temperature) on the development prompts, never on a
    # held-out set: class accuracy for each K:TEMPERATURE (K = 0: the prompt's own embedding)
    python studies/text_study.py grounding --checkpoint RUN --arms 0,1,8:0.05,32:0.05
    # how prompts are read before the lookup (retrieval.py): as typed, spelled, spelled with
    # their head phrase; --typos SEED puts one random typo in each development prompt
    python studies/text_study.py grounding --checkpoint RUN --arms 8 --typos 0 --reading typed,spelled,head
    # then, once, a held-out set's report (`t2i eval report`) with prompts read one way
    python studies/text_study.py report --reading typed -- --checkpoint RUN --prompts paraphrases --json OUT.json

Reports are those of `recipe_study.py run --prompt-sets paraphrases,heldout`
(DIR/ARM/seedS/eval_SET.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import re
import statistics
from pathlib import Path

import torch

from t2i.cli import main as t2i_main
from t2i.evaluation import Reference, class_prompts, generate_per_class
from t2i.pipeline import Pipeline
from t2i.text.captions import FASHION_MNIST
from t2i.text.encoders import PretrainedTextEncoder
from t2i.text.retrieval import CaptionIndex
from t2i.utils.images import make_grid


def prompts_table(args) -> None:
    files = ([Path(f) for f in args.reports] if args.reports else
             sorted((Path(args.dir) / args.arm).glob(f"seed*/eval_{args.set}.json")))
    reports = [json.loads(f.read_text()) for f in files]
    if not reports:
        raise SystemExit(f"no {args.set} reports in {Path(args.dir) / args.arm}")
    sets = reports[0]["protocol"]["prompt_list"]
    names = list(reports[0]["per_class"])
    mean = {p: statistics.mean(r["per_prompt"][p] for r in reports) for ps in sets for p in ps}
    worst = sorted(mean, key=lambda p: (mean[p], p))[:10]
    print(f"Worst ten ({len(reports)} seed(s)): " + "; ".join(f'"{p}" {mean[p]:.0%}' for p in worst))
    print()
    print("| class | accuracy | prompts (accuracy) |")
    print("| --- | --- | --- |")
    for name, ps in zip(names, sets):
        cells = "; ".join(f'"{p}" {mean[p]:.0%}' for p in ps)
        print(f"| {name} | {statistics.mean(mean[p] for p in ps):.0%} | {cells} |")


def grid(args) -> None:
    pipe = Pipeline.from_pretrained(args.checkpoint)
    sets = class_prompts(pipe, args.set)
    width = max(len(ps) for ps in sets)
    rows = [pipe(ps, seed=args.seed, num_per_prompt=1) for ps in sets]
    # rows of unequal length are padded with white
    images = [torch.cat([r, r.new_ones(width - len(r), *r.shape[1:])]) for r in rows]
    make_grid(torch.cat(images), ncol=width, scale=2).save(args.out)
    print(f"wrote {args.out}: {len(sets)} classes x {width} prompts, seed {args.seed}")


def dev_prompts(classes) -> list[list[str]]:
    """The development prompts (studies/dev-prompts.json), in the order of the class list:
    the set settings are chosen on, so that the held-out sets stay held out."""
    dev = json.loads((Path(__file__).parent / "dev-prompts.json").read_text())["classes"]
    return [dev[name] for name in classes.names]


def typo(word: str, rng: random.Random) -> str:
    """The word with one random edit: a letter changed, dropped or added, or two neighbours swapped."""
    i, kind, letters = rng.randrange(len(word)), rng.randrange(4), "abcdefghijklmnopqrstuvwxyz"
    if kind == 0:
        return word[:i] + rng.choice(letters) + word[i + 1:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    if kind == 2:
        return word[:i] + rng.choice(letters) + word[i:]
    i = min(i, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def with_typos(sets: list[list[str]], seed: int) -> list[list[str]]:
    """Each prompt with one typo in one of its longest words (often the garment): a development
    set for spelling that no one wrote, so it cannot have been written to suit the speller."""
    rng = random.Random(seed)

    def one(prompt: str) -> str:
        m = max(re.finditer(r"[a-z]{4,}", prompt), key=lambda m: len(m.group()) + rng.random())
        return prompt[:m.start()] + typo(m.group(), rng) + prompt[m.end():]
    return [[one(p) for p in ps] for ps in sets]


# How grounded prompts are read before the lookup: (spelled, head phrase weighed).
READINGS = {"typed": (False, False), "spelled": (True, False), "head": (True, True)}


def read_as(reading: str) -> None:
    """Every caption index from now on reads prompts this way (`READINGS`)."""
    CaptionIndex.spelling, CaptionIndex.heads = READINGS[reading]


def ceiling(args) -> None:
    """1-NN and a linear probe (softmax regression on the unit-norm sentence embeddings, 300
    full-batch Adam steps, deterministic) from training captions to classes, scored on the
    development prompts and the held-out sets: roughly the best a model conditioned on the
    sentence embedding can do. `--encoder` compares encoders (a hub id or a local folder)."""
    embed = PretrainedTextEncoder(args.encoder).sentence_embeddings
    # The prompt sets are the same whichever captions train: encoded once.
    scored = {}
    for which in ("development", "paraphrases", "heldout"):
        sets = dev_prompts(FASHION_MNIST) if which == "development" else getattr(FASHION_MNIST, which)
        scored[which] = (embed([p for ps in sets for p in ps]),
                         torch.tensor([k for k, ps in enumerate(sets) for _ in ps]))

    print("| training captions | captions | prompt set | nearest caption | linear probe |")
    print("| --- | --- | --- | --- | --- |")
    for name, classes in [("templates", FASHION_MNIST), ("bank", FASHION_MNIST.with_bank())]:
        caps = classes.training_captions()
        x = embed([c for cs in caps for c in cs])
        y = torch.tensor([k for k, cs in enumerate(caps) for _ in cs])
        torch.manual_seed(0)
        w, b = torch.zeros(x.shape[1], len(caps), requires_grad=True), torch.zeros(len(caps), requires_grad=True)
        opt = torch.optim.Adam([w, b], lr=0.05)
        for _ in range(300):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(10 * x @ w + b, y) + 1e-4 * w.pow(2).sum()
            loss.backward()
            opt.step()
        for which, (q, truth) in scored.items():
            nearest = (y[(q @ x.T).argmax(1)] == truth).double().mean().item()
            probe = ((10 * q @ w + b).argmax(1) == truth).double().mean().item()
            print(f"| {name} | {len(x)} | {which} ({len(q)}) | {nearest:.1%} | {probe:.1%} |")


def grounding(args) -> None:
    """Accuracy, precision and recall on the development prompts (studies/dev-prompts.json)
    for each grounding setting, same seeds for every arm."""
    pipe = Pipeline.from_pretrained(args.checkpoint)
    sets = dev_prompts(pipe.classes)
    if args.typos is not None:
        sets = with_typos(sets, args.typos)
    n = args.per_prompt * len(sets[0])
    reference = Reference.for_pipeline(pipe, n)
    typos = "" if args.typos is None else f", one typo each (seed {args.typos})"
    print(f"| retrieve | temperature | reading | accuracy | precision | recall |  ({len(sets) * len(sets[0])} "
          f"development prompts{typos} x {args.per_prompt} images)")
    print("| --- | --- | --- | --- | --- | --- |")
    for arm in args.arms.split(","):
        k, _, temperature = arm.partition(":")
        k, temperature = int(k), float(temperature or 0.05)
        pipe.config = dataclasses.replace(pipe.config, sample=dataclasses.replace(
            pipe.config.sample, retrieve_temperature=temperature))
        for reading in args.reading.split(",") if k else ["-"]:
            if k:
                read_as(reading)
            images, labels = generate_per_class(pipe, n, sets=sets, retrieve=k)
            s = reference.score(images, labels)
            print(f"| {k} | {temperature:g} | {reading} | {s['accuracy']:.1%} | {s['precision']:.3f} "
                  f"| {s['recall']:.3f} |")


def report(args) -> None:
    """`t2i eval report ...` with grounded prompts read as `--reading` says (what `t2i eval`
    itself does is `head`)."""
    read_as(args.reading)
    raise SystemExit(t2i_main(["eval", "report", *(a for a in args.eval_args if a != "--")]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("prompts", help="per-prompt accuracy table of an arm")
    t.add_argument("--dir", help="a recipe study's folder: with --arm, its DIR/ARM/seed*/eval_SET.json")
    t.add_argument("--arm")
    t.add_argument("--reports", nargs="+", help="or these reports of one prompt set")
    t.add_argument("--set", default="paraphrases", choices=["paraphrases", "heldout", "rare"])
    t.set_defaults(fn=prompts_table)
    g = sub.add_parser("grid", help="one row per class, one column per held-out prompt")
    g.add_argument("--checkpoint", required=True)
    g.add_argument("--set", default="paraphrases", choices=["paraphrases", "heldout", "rare"])
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", required=True)
    g.set_defaults(fn=grid)
    c = sub.add_parser("ceiling", help="development and held-out accuracy of the text side alone")
    c.add_argument("--encoder", default="minilm", help="text.encoder: minilm, a hub id or a folder")
    c.set_defaults(fn=ceiling)
    r = sub.add_parser("grounding", help="sample.retrieve settings on the development prompts")
    r.add_argument("--checkpoint", required=True)
    r.add_argument("--arms", default="0,1,8:0.05,32:0.05",
                   help="comma-separated K or K:TEMPERATURE (default temperature 0.05)")
    r.add_argument("--per-prompt", type=int, default=20, help="images per prompt")
    r.add_argument("--typos", type=int, default=None, metavar="SEED",
                   help="put one random typo in each prompt (this seed)")
    r.add_argument("--reading", default="head", help="how grounded prompts are looked up, one or "
                   "more of: typed (as typed), spelled (misspellings corrected), head (spelled, and "
                   "the head phrase weighed as much as the whole prompt: the default)")
    r.set_defaults(fn=grounding)
    e = sub.add_parser("report", help="t2i eval report, grounded prompts read one way")
    e.add_argument("--reading", default="head", choices=list(READINGS))
    e.add_argument("eval_args", nargs=argparse.REMAINDER, help="-- then t2i eval report's arguments")
    e.set_defaults(fn=report)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
