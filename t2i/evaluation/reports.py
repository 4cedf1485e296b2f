"""Evaluation reports as people read them: the default report path, the terminal summary and
the docs' results table (regenerated from report files between its markers)."""

from __future__ import annotations

import json
from pathlib import Path

from ..checkpoint import run_directory
from .emoji import format_emoji_report
from .shapes import composition_table, format_shapes_report


def guidance_interval(protocol: dict) -> tuple[float, float]:
    """The protocol's guidance interval ((0, 1): every step; reports before it had none)."""
    return tuple(protocol.get("cfg_interval") or (0.0, 1.0))


def sampling_label(protocol: dict) -> str:
    """How a report's images were sampled, e.g. "euler 25, CFG 3 on t in [0.2, 1)"."""
    label = f"{protocol['sampler']} {protocol['steps']}, CFG {protocol['cfg']:g}"
    start, end = guidance_interval(protocol)
    label += "" if (start, end) == (0, 1) else f" on t in [{start:g}, {end:g})"
    if protocol.get("retrieve"):
        label += f", grounded on {protocol['retrieve']} captions"
        label += f" ({protocol['reading']})" if protocol.get("reading") else ""
    return label


def default_report_path(report: dict) -> Path:
    """`eval_<checkpoint>_<sampler><steps>_cfg<scale>[_t<start>-<end>][_heldout].json` in the
    checkpoint's run directory (runs/NAME for a shipped model)."""
    ckpt, p = Path(report["run"]["checkpoint"]), report["protocol"]
    which = "" if p.get("prompts", "names") == "names" else f"_{p['prompts']}"
    start, end = guidance_interval(p)
    interval = "" if (start, end) == (0, 1) else f"_t{start:g}-{end:g}"
    return run_directory(ckpt) / (f"eval_{ckpt.name}_{p['sampler']}{p['steps']}_cfg{p['cfg']:g}"
                                 f"{interval}{which}.json")


RESULTS_BEGIN, RESULTS_END = "<!-- results:begin (t2i eval table) -->", "<!-- results:end -->"


def results_table(reports: list[tuple[str, dict]]) -> str:
    """A Markdown table, one row per (file name, report), each figure beside its real floor."""
    head = ("| preset | prompts | CPU min | steps | train img/s | sampling | accuracy (real) "
            "| FD (real) | precision (real) | recall (real) | report |\n" + "|---" * 11 + "|\n")
    rows = []
    for name, r in reports:
        run, p, f = r["run"], r["protocol"], r["real_floor"]
        rows.append(
            f"| `{run['preset']}` | {p.get('prompts', 'names')} | {run['train_minutes']:.1f} | {run['steps']} | "
            f"{run['train_img_per_s']:.0f} | {sampling_label(p)}, N={p['images']} | {r['accuracy']:.1%} ({f['accuracy']:.1%}) | {r['fd']:.2f} "
            f"({f['fd']:.2f}) | {r['precision']:.3f} ({f['precision']:.3f}) | {r['recall']:.3f} "
            f"({f['recall']:.3f}) | {name} |")
    return head + "\n".join(rows) + "\n"


def update_results_table(page: str | Path, report_files: list[Path]) -> list[str]:
    """Replace a Markdown page's results table (between its markers) with one made from the
    class-accuracy reports among `report_files`, followed by a table of the shapes (GenEval-style)
    reports if any; returns the names of those left out (an emoji report scores groups and
    colours instead: `studies/emoji_study.py table`)."""
    page = Path(page)
    text = page.read_text()
    if RESULTS_BEGIN not in text or RESULTS_END not in text:
        raise ValueError(f"{page} has no results markers: add the lines {RESULTS_BEGIN} and "
                         f"{RESULTS_END} where the table goes")
    reports = [(f.name, json.loads(f.read_text())) for f in report_files]
    accuracy = [(name, r) for name, r in reports if "accuracy" in r]
    shapes = [(name, r) for name, r in reports if r.get("protocol", {}).get("dataset") == "shapes"]
    judged = {name for name, _ in accuracy + shapes}
    skipped = [name for name, _ in reports if name not in judged]
    before, rest = text.split(RESULTS_BEGIN, 1)
    _, after = rest.split(RESULTS_END, 1)
    tables = [results_table(accuracy)] if accuracy else []
    tables += [composition_table(shapes)] if shapes else []
    page.write_text(before + RESULTS_BEGIN + "\n" + "\n".join(tables) + RESULTS_END + after)
    return skipped


def format_report(report: dict) -> str:
    """The terminal summary of a report: each metric beside its real-data floor, then each
    class's accuracy and the classes it was most often mistaken for, then (where classes had
    several prompts) the ten prompts that missed most. An emoji report has its own summary."""
    if report["protocol"].get("dataset") == "emoji":
        return format_emoji_report(report)
    if report["protocol"].get("dataset") == "shapes":
        return format_shapes_report(report)
    p, floor = report["protocol"], report["real_floor"]
    lines = [f"{p['images']} images from the class {p.get('prompts', 'names')} ("
             f"{sampling_label(p)}, {report['sample_img_per_s']:.1f} img/s) "
             f"against {p['reference']}",
             f"{'':>12} {'generated':>10} {'real floor':>10}"]
    for key in ("accuracy", "fd", "precision", "recall"):
        lines.append(f"{key:>12} {report[key]:10.4f} {floor[key]:10.4f}")
    fid = report["inception_fid"]
    lines.append(f"Inception FID: {fid if fid is not None else report['inception_note']}")
    names = list(report["per_class"])
    lines.append(f"{'prompt':>12} {'acc':>6}  most confused with")
    for i, (name, row) in enumerate(zip(names, report["confusion"])):
        others = sorted(((c, names[j]) for j, c in enumerate(row) if j != i and c), reverse=True)
        lines.append(f"{name:>12} {report['per_class'][name]:6.2f}  "
                     + ", ".join(f"{n} {c}" for c, n in others[:2]))
    per_prompt = report.get("per_prompt", {})
    if len(per_prompt) > len(names):
        lines.append("worst prompts (accuracy, class):")
        for prompt, acc, label in worst_prompts(report, 10):
            lines.append(f"{acc:6.2f}  {prompt!r} ({label})")
    return "\n".join(lines)


def worst_prompts(report: dict, k: int) -> list[tuple[str, float, str]]:
    """The k prompts of a report with the lowest accuracy: (prompt, accuracy, class)."""
    label = {p: name for name, ps in zip(report["per_class"], report["protocol"]["prompt_list"])
             for p in ps}
    ranked = sorted(report["per_prompt"].items(), key=lambda kv: (kv[1], kv[0]))
    return [(p, acc, label[p]) for p, acc in ranked[:k]]
