import json
from pathlib import Path

import pytest
from PIL import Image

from t2i.cli import main


def test_train_then_sample_on_debug(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert main(["-q", "train", "--preset", "debug", "--out", str(run), "train.steps=4",
                 "train.ckpt_every=2"]) == 0
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_0000004"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a bag\n\nsneakers\n")
    out = tmp_path / "samples"
    assert main(["-q", "sample", "--checkpoint", str(run), "--prompt", "a dress", "--prompts-file",
                 str(prompts), "--num-per-prompt", "2", "--steps", "3", "--seed", "7",
                 "--out", str(out), "--strip"]) == 0
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == ["000_000.png", "000_001.png", "001_000.png", "001_001.png", "002_000.png",
                     "002_001.png", "grid.png", "strip.png"]
    img = Image.open(out / "000_000.png")
    assert img.size == (28, 28) and img.mode == "L"
    first = (out / "001_001.png").read_bytes()
    out2 = tmp_path / "again"
    main(["-q", "sample", "--checkpoint", str(run), "--prompt", "a bag", "--num-per-prompt", "2",
          "--steps", "3", "--seed", "7", "--out", str(out2)])
    assert (out2 / "000_001.png").read_bytes() == first  # same seed, same image
    # --compile hands the backbone to compile_module (tests/test_pipeline.py compiles for real)
    compiled = []
    monkeypatch.setattr("t2i.pipeline.compile_module", lambda m, d: compiled.append(m) or m)
    main(["-q", "sample", "--checkpoint", str(run), "--prompt", "a bag", "--num-per-prompt", "2",
          "--steps", "3", "--seed", "7", "--out", str(out2), "--compile"])
    assert [type(m).__name__ for m in compiled] == ["DiT"] and (out2 / "000_001.png").read_bytes() == first
    assert main(["-q", "eval", "--checkpoint", str(run), "--n-per-class", "1", "--steps", "1",
                 "--reference-images", "100", "--compile", "--json", str(tmp_path / "r.json")]) == 0
    assert len(compiled) == 2


REPORT_KEYS = {"protocol", "accuracy", "fd", "precision", "recall", "per_class", "per_prompt", "confusion",
               "real_floor", "inception_fid", "inception_note", "sample_img_per_s",
               "classifier_test_accuracy", "run", "headline"}


def test_eval_report_schema_table_and_default_path(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["-q", "train", "--preset", "debug", "--out", str(run), "train.steps=2"]) == 0
    report = tmp_path / "report.json"
    assert main(["-q", "eval", "--checkpoint", str(run), "--n-per-class", "3", "--steps", "2",
                 "--json", str(report), "--reference-images", "1000"]) == 0
    data = json.loads(report.read_text())
    assert set(data) == REPORT_KEYS
    assert data["protocol"]["images"] == 30 and data["protocol"]["steps"] == 2
    assert data["protocol"]["reference"] == "fashion-mnist test (1000 images)"
    for key in ("accuracy", "fd", "precision", "recall"):
        assert isinstance(data[key], float) and isinstance(data["real_floor"][key], float)
    assert data["real_floor"]["fd"] < data["fd"]  # two training steps are far from real data
    assert [sum(row) for row in data["confusion"]] == [3] * 10
    assert data["per_prompt"] == pytest.approx(data["per_class"])  # one prompt per class: its name
    assert data["accuracy"] == pytest.approx(sum(r[i] for i, r in enumerate(data["confusion"])) / 30)
    assert data["run"]["preset"] == "debug" and data["run"]["steps"] == 2
    assert data["run"]["precision"] == "fp32: fp32"  # what the steps ran in, as the run decided
    assert data["inception_fid"] is None and "not requested" in data["inception_note"]
    out = capsys.readouterr().out
    assert "real floor" in out and "most confused with" in out
    assert main(["-q", "eval", "--checkpoint", str(run), "--n-per-class", "1", "--steps", "1",
                 "--reference-images", "100"]) == 0
    assert (run / "eval_step_0000002_euler1_cfg3.json").is_file()
    assert data["protocol"]["clip_x0"] is False  # the checkpoint's own setting
    assert main(["-q", "eval", "report", "--checkpoint", str(run), "--n-per-class", "1", "--steps",
                 "1", "--reference-images", "100", "--clip-x0", "--json", str(report)]) == 0
    assert json.loads(report.read_text())["protocol"]["clip_x0"] is True


def test_eval_sweep_and_readme_table(tmp_path):
    run = tmp_path / "run"
    assert main(["-q", "train", "--preset", "debug", "--out", str(run), "train.steps=2"]) == 0
    assert main(["-q", "eval", "sweep", "--checkpoint", str(run), "--n-per-class", "2",
                 "--steps-list", "1,2", "--cfg-list", "1,3", "--steps", "2",
                 "--reference-images", "200"]) == 0
    rows = (run / "sweep" / "sweep.csv").read_text().splitlines()
    assert rows[0].startswith("sweep,sampler,steps,nfe,cfg,accuracy,fd")
    assert [r.split(",")[:5] for r in rows[1:]] == [
        ["nfe", "euler", "1", "1", "3.0"], ["nfe", "euler", "2", "2", "3.0"],
        ["nfe", "heun", "1", "1", "3.0"], ["nfe", "heun", "2", "3", "3.0"],
        ["cfg", "euler", "2", "2", "1.0"], ["cfg", "euler", "2", "2", "3.0"]]
    Image.open(run / "sweep" / "sweep.png").verify()

    report = tmp_path / "r.json"
    main(["-q", "eval", "--checkpoint", str(run), "--n-per-class", "1", "--steps", "1", "--json",
          str(report), "--reference-images", "100"])
    readme = tmp_path / "results.md"
    readme.write_text("# x\n<!-- results:begin (t2i eval table) -->\nold\n<!-- results:end -->\ntail\n")
    assert main(["-q", "eval", "table", "--page", str(readme), "--reports", str(report)]) == 0
    text = readme.read_text()
    assert "old" not in text and "| `debug` |" in text and text.endswith("tail\n")
    readme.write_text("no markers")
    assert main(["-q", "eval", "readme", "--readme", str(readme), "--reports", str(report)]) == 2  # the old name


def test_figures_write_valid_png_and_gif(tmp_path):
    run = tmp_path / "run"
    assert main(["-q", "train", "--preset", "debug", "--out", str(run), "train.steps=5",
                 "train.sample_every=2", "train.log_every=1", "train.eval_every=2",
                 "train.eval_n_per_class=2"]) == 0
    # Evaluations every 2 steps and one where training ended, against training minutes.
    evals = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()]
    assert [e["step"] for e in evals] == [2, 4, 5]
    assert 0 < evals[0]["minutes"] < evals[-1]["minutes"] and 0 <= evals[-1]["accuracy"] <= 1
    out = tmp_path / "figures"
    assert main(["-q", "figures", "--run", str(run), "--out", str(out), "--seeds", "2",
                 "--steps", "2"]) == 0
    for name in ("denoising.png", "progression.png", "noise_levels.png", "curves.png",
                 "quality.png"):
        Image.open(out / name).verify()
    gif = Image.open(out / "seeds.gif")
    assert gif.format == "GIF" and gif.n_frames == 2


def test_resume_latest(tmp_path):
    run = tmp_path / "run"
    assert main(["-q", "train", "--preset", "debug", "--out", str(run), "train.steps=2"]) == 0
    assert main(["-q", "train", "--preset", "debug", "--out", str(run), "train.steps=4",
                 "--resume", "latest"]) == 0
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_0000004"


def test_errors_are_messages_not_tracebacks(tmp_path, capsys):
    assert main(["-q", "train", "--preset", "debug", "model.depht=2"]) == 2
    assert "unknown field model.depht" in capsys.readouterr().err
    assert main(["-q", "sample", "--checkpoint", str(tmp_path)]) == 2
    assert "config.json" in capsys.readouterr().err


def test_prepare_builds_the_latent_cache_and_refuses_pixel_presets(tmp_path, tiny_vae_dir, capsys):
    cache = tmp_path / "cache"
    args = ["-q", "prepare", "--preset", "debug", f"vae.name={tiny_vae_dir}", "model.patch_size=2",
            f"data.cache_dir={cache}"]
    assert main(args) == 0
    manifest = json.loads((cache / "latents" / "manifest.json").read_text())
    assert manifest["count"] == 512 and manifest["latent_shape"] == [4, 8, 8]
    assert "512 latents of shape 4x8x8" in capsys.readouterr().out
    assert main(["-q", "prepare", "--preset", "debug"]) == 2
    assert "needs no cache" in capsys.readouterr().err


def test_vae_figures_write_pngs(tmp_path, tiny_vae_dir, grey_folder):
    out = tmp_path / "figures"
    assert main(["-q", "vae", "figures", "--vae", str(tiny_vae_dir), "vae.resolution=16",
                 "--n", "3", "--out", str(out)]) == 0
    for name in ("reconstruction", "latents", "latent_noising", "latent_prior"):
        img = Image.open(out / f"{name}.png")
        img.verify()
    # A captioned dataset has no test split: its training images stand in.
    assert main(["-q", "vae", "figures", "--vae", str(tiny_vae_dir), "vae.resolution=16",
                 "data.dataset=folder", f"data.data_dir={grey_folder}", "data.channels=1",
                 "data.image_size=16", f"data.cache_dir={tmp_path / 'cache'}", "--n", "3",
                 "--out", str(tmp_path / "folder-figures")]) == 0
    Image.open(tmp_path / "folder-figures" / "latent_prior.png").verify()


def test_eval_without_a_subcommand_is_eval_report():
    from t2i.cli import with_eval_default

    assert with_eval_default(["-q", "eval", "--checkpoint", "r"]) == ["-q", "eval", "report", "--checkpoint", "r"]
    assert with_eval_default(["eval", "sweep", "--checkpoint", "r"]) == ["eval", "sweep", "--checkpoint", "r"]
    assert with_eval_default(["eval", "readme", "--reports", "a"]) == ["eval", "readme", "--reports", "a"]
    assert with_eval_default(["sample", "--checkpoint", "eval"]) == ["sample", "--checkpoint", "eval"]


def test_expected_failures_are_one_error_line_with_exit_2(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert main(["-q", "train", "--preset", "debug", "--out", str(run), "train.steps=2"]) == 0
    capsys.readouterr()
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    empty = tmp_path / "prompts.txt"
    empty.write_text("\n\n")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "train-images-idx3-ubyte.gz").write_bytes(b"")
    cases = [
        (["train", "--preset", "debug", "--out", str(a_file)], "is not a folder"),
        (["train", "--preset", "debug", "--out", "/proc/t2i-run"], "/proc/t2i-run"),
        (["train", "--preset", "debug", "train.keep_last=-1"], "train.keep_last=-1"),
        (["train", "--preset", "debug", "sample.sampler=dpm", "--out", str(tmp_path / "x")],
         "sample.sampler='dpm'"),
        (["train", "--preset", "debug", "--data-dir", str(partial), "--out", str(tmp_path / "y")],
         "holds only some"),
        (["sample", "--checkpoint", str(run), "--prompts-file", str(empty)], "holds no prompt"),
        (["sample", "--checkpoint", str(run), "--cfg", "nan", "--out", str(tmp_path / "s")],
         "finite"),
        (["sample", "--checkpoint", str(tmp_path / "nowhere")], "neither a checkpoint"),
        (["train", "--preset", "debug", "sample.cfg_start=0.8", "sample.cfg_end=0.2",
          "--out", str(tmp_path / "z")], "sample.cfg_end=0.2"),
    ]
    for argv, message in cases:
        assert main(["-q", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"t2i {argv[0]}: error: ") and message in err, (argv, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    monkeypatch.setenv("T2I_DEBUG", "1")  # the traceback, for a bug report
    with pytest.raises(ValueError, match="holds no prompt"):
        main(["-q", "sample", "--checkpoint", str(run), "--prompts-file", str(empty)])


def test_export_writes_a_small_model_that_samples_like_its_checkpoint(tmp_path, capsys, monkeypatch):
    import torch
    from safetensors.torch import load_file

    from t2i import checkpoint
    from t2i.pipeline import Pipeline

    run = tmp_path / "run"
    assert main(["-q", "train", "--preset", "debug", "--out", str(run), "train.steps=4",
                 "train.lr=2e-3"]) == 0
    assert main(["-q", "eval", "report", "--checkpoint", str(run), "--n-per-class", "2",
                 "--steps", "2", "--reference-images", "200", "--json", str(tmp_path / "r.json")]) == 0
    shipped = tmp_path / "models"
    assert main(["-q", "export", "--checkpoint", str(run), "--out", str(shipped / "tiny"),
                 "--report", str(tmp_path / "r.json")]) == 0
    out = shipped / "tiny"
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "ema.safetensors",
                                                     "eval_names.json", "manifest.json", "state.json"]
    assert {v.dtype for v in load_file(str(out / "ema.safetensors")).values()} == {torch.float16}
    card = (out / "README.md").read_text()
    assert "t2i train --preset debug train.steps=4 train.lr=0.002" in card and "accuracy" in card
    a = Pipeline.from_pretrained(run, precision="fp32")(["a bag"], steps=2, seed=1)
    b = Pipeline.from_pretrained(out, precision="fp32")(["a bag"], steps=2, seed=1)
    assert (a - b).abs().max() < 0.02  # 16-bit weights, the same images to the eye
    # A name that is not a path resolves to a shipped model; reports then go to runs/NAME.
    monkeypatch.setattr(checkpoint, "SHIPPED", shipped)
    monkeypatch.chdir(tmp_path)
    assert checkpoint.resolve_checkpoint("tiny") == out
    assert checkpoint.run_directory(out) == Path("runs") / "tiny"
    with pytest.raises(FileNotFoundError, match=r"shipped model \(tiny\)"):
        checkpoint.resolve_checkpoint("tinny")
    capsys.readouterr()
    assert main(["-q", "train", "--preset", "debug", "--out", str(tmp_path / "again"), "--resume",
                 str(out)]) == 2  # an exported model holds no training state to resume from
    assert "model.safetensors" in capsys.readouterr().err


def test_data_show_prints_the_dataset_and_writes_a_captioned_grid(tmp_path, capsys):
    assert main(["-q", "data", "show", "--preset", "debug", "--out", str(tmp_path / "d.png"),
                 "--n", "8"]) == 0
    printed = capsys.readouterr().out
    assert "images: 512 of shape (1, 28, 28)" in printed and "classes (10): T-shirt" in printed
    assert Image.open(tmp_path / "d.png").size == (6 * 120, 2 * (112 + 48))


def test_bench_reports_memory_and_finds_a_batch(capsys):
    assert main(["-q", "bench", "--preset", "debug", "--train-steps", "1", "--sample-images", "10",
                 "train.device=cpu"]) == 0
    assert "train_peak_memory_MiB" in capsys.readouterr().out
    assert main(["-q", "bench", "--preset", "debug", "--find-batch", "--max-batch", "16",
                 "train.device=cpu"]) == 0
    printed = capsys.readouterr().out
    assert "largest that fits" in printed and printed.count("\n") == 4  # header, 8, 16, verdict


def test_progression_from_kept_checkpoints_at_any_seed(tmp_path):
    run = tmp_path / "run"
    assert main(["-q", "train", "--preset", "debug", "--out", str(run), "train.steps=6",
                 "train.ckpt_every=2", "train.keep_last=1", "train.keep_every=4"]) == 0
    kept = sorted(p.name for p in (run / "checkpoints").glob("step_*"))
    assert kept == ["step_0000004", "step_0000006"]  # every 4th, and the newest
    out = tmp_path / "fig"
    assert main(["-q", "figures", "progression", "--run", str(run), "--seed", "32", "--steps", "2",
                 "--out", str(out)]) == 0
    # One row per kept checkpoint: ten 28x28 class images at scale 2 under a title band.
    assert Image.open(out / "progression.png").size == (2 * (2 + 10 * 30), 2 * (2 * (2 + 30) + 16))
    assert main(["-q", "figures", "progresion", "--run", str(run)]) == 2  # a typo: one error line


def test_a_debug_sized_shapes_run_trains_samples_and_is_judged(tmp_path, tiny_text_models):
    run = tmp_path / "run"
    assert main(["-q", "train", "--preset", "debug", "--out", str(run), "data.dataset=shapes",
                 "data.image_size=32", "data.scenes=64", "model.patch_size=4",
                 f"text.encoder={tiny_text_models['bert']}", "train.steps=4", "train.eval_every=4",
                 "train.eval_n_per_class=1"]) == 0
    record = json.loads((run / "eval.jsonl").read_text().splitlines()[0])
    assert record["step"] == 4 and 0 <= record["overall"] <= 1 and record["real_floor"]["overall"] >= 0.99
    assert main(["-q", "sample", "--checkpoint", str(run), "--prompt", "a red circle to the left of a blue square",
                 "--num-per-prompt", "2", "--steps", "2", "--out", str(tmp_path / "samples")]) == 0
    assert Image.open(tmp_path / "samples" / "000_001.png").size == (32, 32)
    report = tmp_path / "report.json"
    assert main(["-q", "eval", "report", "--checkpoint", str(run), "--n-per-class", "1", "--steps", "2",
                 "--prompts", "phrasings", "--json", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["protocol"]["prompts"] == "phrasings" and data["headline"][0] == "overall"
    assert set(data["per_prompt"]) >= {"a crimson circle", "a pair of circles"}


def test_prompts_with_control_characters_are_cleaned_and_overlong_ones_refused(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["-q", "train", "--preset", "debug", "--out", str(run), "train.steps=1"]) == 0
    out = tmp_path / "samples"
    assert main(["-q", "sample", "--checkpoint", str(run), "--prompt", "a\u202e bag\x1b",
                 "--steps", "1", "--out", str(out)]) == 0
    assert (out / "000_000.png").is_file()
    assert main(["-q", "sample", "--checkpoint", str(run), "--prompt", "a bag " * 500,
                 "--steps", "1", "--out", str(out)]) == 2
    assert "error: a prompt is 3,000 characters long; the limit is 1,000" in capsys.readouterr().err


def test_overrides_apply_in_any_order_on_the_command_line(tmp_path, capsys):
    """The emoji preset turned to a folder: data.recolour=false may come before or after."""
    for order in (["data.recolour=false", "data.dataset=folder"], ["data.dataset=folder", "data.recolour=false"]):
        code = main(["-q", "data", "show", "--preset", "emoji", *order, "--data-dir", str(tmp_path / "none"),
                     "--out", str(tmp_path / "grid.png")])
        err = capsys.readouterr().err
        assert code == 2 and "recolour" not in err and "none" in err  # past the config: no such folder


def test_sigterm_stops_an_evaluation_at_once(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "t2i", "-q", "eval", "--checkpoint", "fmnist-text",
                             "--n-per-class", "2000", "--json", str(tmp_path / "r.json")],
                            stderr=subprocess.PIPE, text=True)
    time.sleep(8)  # loading, then generating
    proc.send_signal(signal.SIGTERM)
    sent = time.perf_counter()
    _, err = proc.communicate(timeout=60)
    assert time.perf_counter() - sent < 5 and proc.returncode == 143, err
    assert "t2i eval: terminated (SIGTERM)" in err and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()
