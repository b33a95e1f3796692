"""aimc-report on synthetic results folders: grouping, statistics, columns, refusals, byte-for-byte reruns."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aimc_runner import figures, report, results
from conftest import GLUE_FIXTURES

SHA = "a" * 40
DATA = {"SST-2/train.tsv": "1" * 64, "SST-2/dev.tsv": "2" * 64}


def record(task="sst2", tile="ideal", train="fp", seed=0, metrics=None, metrics_std=None, chips=1, **config):
    """A results.json dict as aimc-run writes it; ``config`` sets dotted leaves (``train__noise_std=0.05``)."""
    metrics = metrics or {"dev": {"accuracy": 0.8}}
    cfg = {"task": {"name": task, "data_dir": None, "train_epochs": 1.0},
           "model": {"name": "tiny", "max_seq_length": 64},
           "tile": {"name": tile, "circuit": {"r_wire_ohm": 0.15}, "t_inference_s": 1.0},
           "train": {"mode": train, "noise_std": 0.03 if train == "hwa" else 0.0, "max_steps": 2},
           "eval": {"seeds": chips}, "seed": seed, "cache_dir": "/tmp/cache", "num_threads": 1, "progress": False,
           "skip_complete": True}
    for dotted, value in config.items():
        *parents, leaf = dotted.split("__")
        node = cfg
        for p in parents:
            node = node[p]
        node[leaf] = value
    return {
        "schema_version": results.SCHEMA_VERSION, "task": task, "model": "tiny", "tile": tile, "train": train,
        "main_metric": "pearson" if task == "stsb" else "accuracy", "metrics": metrics,
        "metrics_std": metrics_std or {s: {k: 0.0 for k in m} for s, m in metrics.items()},
        "metrics_per_draw": [metrics] * chips, "seeds": {"run": seed, "chips": list(range(chips))},
        "examples": {"train": 8, "dev": 6}, "training": {"key": f"k{seed}", "reused": False},
        "wall_s": {"train": 1.0, "eval": 1.0, "total": 2.5},
        "data": {"source": "/data/glue", "files": dict(DATA)}, "versions": {"aimc-runner": "0.1.0", "torch": "2.1"},
        "git": {"sha": SHA, "dirty": False}, "machine": {"hostname": "h", "platform": "p", "cpus": 2}, "config": cfg,
    }


def put(folder: Path, name: str, rec: dict) -> None:
    (folder / name).mkdir(parents=True)
    (folder / name / "results.json").write_text(json.dumps(rec))


def acc(x: float) -> dict:
    return {"dev": {"accuracy": x}}


def run(*args) -> int:
    return report.main([str(a) for a in args])


def rows(out: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO((out / "table.csv").read_text())))


@pytest.fixture
def paper(tmp_path) -> Path:
    """sst2: ideal/read_noise × fp/hwa; fp-ideal over three seeds, read_noise-hwa one seed of five chips."""
    d = tmp_path / "runs"
    for seed, x in enumerate([0.80, 0.82, 0.87]):
        put(d, f"ideal_fp_{seed}", record(seed=seed, metrics=acc(x), num_threads=seed + 1, cache_dir=f"/c{seed}"))
    for seed, x in enumerate([0.84, 0.86]):
        put(d, f"ideal_hwa_{seed}", record(train="hwa", seed=seed, metrics=acc(x)))
        put(d, f"rn_fp_{seed}", record(tile="read_noise", seed=seed, metrics=acc(x - 0.1), chips=5))
    put(d, "rn_hwa_0", record(tile="read_noise", train="hwa", metrics=acc(0.78), metrics_std=acc(0.02), chips=5))
    return d


def test_groups_by_config_less_seed_and_reports_mean_and_std_over_seeds(paper, tmp_path):
    out = tmp_path / "out"
    assert run(paper, "--out", out) == 0
    by = {(r["tile"], r["train"]): r for r in rows(out)}
    assert list(by) == [("ideal", "fp"), ("ideal", "hwa"), ("read_noise", "fp"), ("read_noise", "hwa")]
    # 80, 82, 87: mean 83, sample variance (9 + 1 + 16) / 2 = 13 (execution-only settings differ: still one group)
    assert by["ideal", "fp"]["n_seeds"] == "3" and by["ideal", "fp"]["std_over"] == "seeds"
    assert float(by["ideal", "fp"]["mean_x100"]) == pytest.approx(83.0)
    assert float(by["ideal", "fp"]["std_x100"]) == pytest.approx(math.sqrt(13), abs=1e-4)
    assert float(by["ideal", "hwa"]["std_x100"]) == pytest.approx(math.sqrt(2), abs=1e-4)  # 84, 86
    # one seed: its chip mean and chip std, and it says so
    one = by["read_noise", "hwa"]
    assert (one["n_seeds"], one["n_chips"], one["std_over"]) == ("1", "5", "chips")
    assert (one["mean_x100"], one["std_x100"]) == ("78.0000", "2.0000")
    md = (out / "table.md").read_text()
    assert "| tiny | ideal | fp | 3 | 1 | seeds | 83.00 ± 3.61 |" in md
    assert "| tiny | read_noise | hwa | 1 | 5 | chips | 78.00 ± 2.00 |" in md
    assert "- ideal: hwa − fp = +2.00" in md  # 85 - 83
    assert "- read_noise: hwa − fp = +3.00" in md  # 78 - 75
    assert r"tiny & read\_noise & hwa & 1 & 5 & chips & 78.00 $\pm$ 2.00 \\" in (out / "table.tex").read_text()
    assert (out / "fig_presets.png").read_bytes().startswith(b"\x89PNG")
    assert not (out / "fig_hwa_sigma.png").exists()  # noise_std is set by the training mode alone here


def test_only_fields_that_vary_within_a_preset_and_mode_become_columns(tmp_path):
    d = tmp_path / "runs"
    put(d, "fp", record(metrics=acc(0.8)))
    for sigma, x in [(0.02, 0.82), (0.05, 0.85), (0.1, 0.81)]:
        put(d, f"hwa_{sigma}", record(train="hwa", metrics=acc(x), train__noise_std=sigma))
    out = tmp_path / "out"
    assert run(d, "--out", out) == 0
    got = rows(out)
    assert list(got[0])[:5] == ["task", "model", "tile", "train", "train.noise_std"]
    assert [(r["train"], r["train.noise_std"]) for r in got] == [("fp", "0"), ("hwa", "0.02"), ("hwa", "0.05"),
                                                                ("hwa", "0.1")]
    assert "tile.circuit.r_wire_ohm" not in got[0]
    assert (out / "fig_hwa_sigma.png").exists() and not (out / "fig_r_wire.png").exists()


def test_wire_resistance_and_drift_scans_give_their_figures(tmp_path):
    d = tmp_path / "runs"
    for r_wire in (0.05, 0.5, 2.0):
        put(d, f"ir_{r_wire}", record(tile="irdrop", metrics=acc(0.9 - r_wire / 10), tile__circuit__r_wire_ohm=r_wire))
    for t in (1.0, 3600.0, 31536000.0):
        for train in ("fp", "hwa"):
            put(d, f"drift_{train}_{t}", record(tile="pcm_drift", train=train, metrics=acc(0.8), tile__t_inference_s=t))
    out = tmp_path / "out"
    assert run(d, "--out", out) == 0
    assert {p.name for p in out.glob("*.png")} == {"fig_r_wire.png", "fig_drift.png"}  # one preset only: no bars
    assert "31536000" in (out / "table.md").read_text()


def test_mnli_reports_matched_and_mismatched_and_stsb_pearson_and_spearman(tmp_path):
    d = tmp_path / "runs"
    put(d, "mnli", record("mnli", metrics={"dev_matched": {"accuracy": 0.7}, "dev_mismatched": {"accuracy": 0.72}},
                          chips=3, metrics_std={"dev_matched": {"accuracy": 0.01}, "dev_mismatched": {"accuracy": 0.0}}))
    put(d, "stsb", record("stsb", metrics={"dev": {"pearson": 0.85, "spearman": 0.84}}))
    put(d, "sst2", record("sst2"))
    out = tmp_path / "out"
    assert run(d, "--out", out) == 0
    md = (out / "table.md").read_text()
    # task order of tasks.TASKS: sst2, stsb, mnli
    assert md.index("## SST-2") < md.index("## STS-B") < md.index("## MNLI")
    assert "| std_over | accuracy (m) | accuracy (mm) |" in md
    assert "| chips | 70.00 ± 1.00 | 72.00 ± 0.00 |" in md
    assert "| std_over | Pearson | Spearman |" in md and "| none | 85.00 | 84.00 |" in md
    assert [(r["split"], r["metric"]) for r in rows(out) if r["task"] == "mnli"] == [
        ("dev_matched", "accuracy"), ("dev_mismatched", "accuracy")]


@pytest.fixture
def grid(tmp_path) -> Path:
    """sst2: fp/hwa × ideal/adc/read_noise, with seeds (std over seeds), one seed of five chips and one of one chip.

    Folder names put hwa first, so the pivot's fp-first row order comes from the report, not from the files."""
    d = tmp_path / "runs"
    for seed, (fp, hwa) in enumerate([(0.90, 0.85), (0.92, 0.86)]):
        put(d, f"a_hwa_adc_{seed}", record(tile="adc", train="hwa", seed=seed, metrics=acc(hwa)))
        put(d, f"b_fp_ideal_{seed}", record(seed=seed, metrics=acc(fp)))
    put(d, "a_hwa_ideal", record(train="hwa", metrics=acc(0.89)))
    put(d, "a_hwa_rn", record(tile="read_noise", train="hwa", metrics=acc(0.87), metrics_std=acc(0.01), chips=5))
    put(d, "b_fp_adc", record(tile="adc", metrics=acc(0.81), metrics_std=acc(0.01), chips=5))
    put(d, "b_fp_rn", record(tile="read_noise", metrics=acc(0.88)))
    return d


def test_pivot_of_training_mode_by_tile_preset_precedes_the_long_table(grid, tmp_path):
    out = tmp_path / "out"
    assert run(grid, "--out", out) == 0
    md = (out / "table.md").read_text()
    pivot = ("accuracy by training mode (rows) and tile preset (columns):\n\n"
             "| train | ideal | adc | read_noise |\n| --- | --- | --- | --- |\n"
             "| fp | 91.00 ± 1.41 | 81.00 ± 1.00 | 88.00 |\n"  # 90, 92 over seeds; one seed of 5 chips; one chip
             "| hwa | 89.00 | 85.50 ± 0.71 | 87.00 ± 1.00 |\n")  # 85, 86 over seeds
    assert pivot in md
    assert md.index("## SST-2") < md.index(pivot) < md.index("| model | tile | train |")
    assert md.count("by training mode") == 1
    tex = (out / "table.tex").read_text()
    assert (r"\label{tab:sst2-pivot}" + "\n" + r"\begin{tabular}{lrrr}" + "\n" + r"\toprule" + "\n"
            r"train & ideal & adc & read\_noise \\" + "\n" + r"\midrule" + "\n"
            r"fp & 91.00 $\pm$ 1.41 & 81.00 $\pm$ 1.00 & 88.00 \\" + "\n"
            r"hwa & 89.00 & 85.50 $\pm$ 0.71 & 87.00 $\pm$ 1.00 \\" + "\n" + r"\bottomrule") in tex
    assert tex.index(r"\label{tab:sst2-pivot}") < tex.index(r"\label{tab:sst2}")
    assert len(rows(out)) == 6  # the CSV stays long: one row per configuration and metric


def test_recovery_is_stated_as_a_share_of_the_loss_each_preset_causes(grid, tmp_path):
    assert run(grid, "--out", tmp_path / "out") == 0
    md = (tmp_path / "out" / "table.md").read_text()
    # fp: 91 on ideal, 81 under adc -> a 10-point loss; hwa under adc 85.5 wins back 4.5 points of it.
    assert "- adc: hwa − fp = +4.50 (recovers 45% of the 10.00-point loss of fp vs ideal)" in md
    assert "- read_noise: hwa − fp = -1.00 (adds 33% to the 3.00-point loss of fp vs ideal)" in md
    assert "- ideal: hwa − fp = -2.00\n" in md


def test_no_pivot_of_a_single_configuration(tmp_path):
    d = tmp_path / "runs"
    for seed in (0, 1):
        put(d, f"s{seed}", record(seed=seed))
    out = tmp_path / "out"
    assert run(d, "--out", out) == 0
    assert "by training mode" not in (out / "table.md").read_text()
    assert "pivot" not in (out / "table.tex").read_text()
    assert "| tiny | ideal | fp | 2 | 1 | seeds | 80.00 ± 0.00 |" in (out / "table.md").read_text()


def test_a_pivot_per_combination_of_scanned_fields_and_none_of_one_cell(tmp_path):
    d = tmp_path / "runs"
    for r_wire, x in [(0.15, 0.9), (0.5, 0.8)]:
        for tile in ("ideal", "irdrop"):
            for train in ("fp", "hwa"):
                put(d, f"{tile}_{train}_{r_wire}", record(tile=tile, train=train, metrics=acc(x),
                                                          tile__circuit__r_wire_ohm=r_wire))
    put(d, "irdrop_fp_2", record(tile="irdrop", metrics=acc(0.5), tile__circuit__r_wire_ohm=2.0))  # alone: no pivot
    out = tmp_path / "out"
    assert run(d, "--out", out) == 0
    md = (out / "table.md").read_text()
    assert md.count("by training mode") == 2
    assert ("accuracy by training mode (rows) and tile preset (columns), r_wire_ohm=0.15:\n\n"
            "| train | ideal | irdrop |\n| --- | --- | --- |\n| fp | 90.00 | 90.00 |\n| hwa | 90.00 | 90.00 |\n") in md
    assert "tile preset (columns), r_wire_ohm=0.5:" in md and "r_wire_ohm=2:" not in md
    tex = (out / "table.tex").read_text()
    assert r"\label{tab:sst2-pivot1}" in tex and r"\label{tab:sst2-pivot2}" in tex
    assert r"(columns), r\_wire\_ohm=0.5; $\times 100$" in tex


def test_mnli_pivot_shows_matched_and_mismatched_in_one_cell(tmp_path):
    d = tmp_path / "runs"
    for tile, x in (("ideal", 0.7), ("adc", 0.6)):
        put(d, tile, record("mnli", tile=tile, metrics={"dev_matched": {"accuracy": x},
                                                        "dev_mismatched": {"accuracy": x + 0.02}}))
    out = tmp_path / "out"
    assert run(d, "--out", out) == 0
    assert ("accuracy (m / mm) by training mode (rows) and tile preset (columns):\n\n| train | ideal | adc |\n"
            "| --- | --- | --- |\n| fp | 70.00 / 72.00 | 60.00 / 62.00 |\n") in (out / "table.md").read_text()


def test_presets_figure_has_markers_scaled_to_the_data_and_the_digital_line(grid, monkeypatch):
    drawn = []
    monkeypatch.setattr(figures, "_png", lambda fig: drawn.append(fig) or b"png")
    assert report.build([grid])[figures.PRESETS_FIGURE] == b"png" and len(drawn) == 1
    (ax,) = [ax for ax in drawn[0].axes if ax.get_visible()]
    assert not ax.patches  # no bars
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_ydata()) == [pytest.approx(91.0)] * 2  # fp on ideal
    points = {c.get_label(): c.lines[0] for c in ax.containers}  # errorbar containers: (marker line, caps, bars)
    assert {mode: line.get_marker() for mode, line in points.items()} == {"fp": "o", "hwa": "s"}
    assert all(line.get_linestyle() == "None" for line in points.values())  # markers only
    assert list(points["fp"].get_xdata()) == pytest.approx([-0.075, 0.925, 1.925])  # fp left of each preset's tick
    assert 75 < ax.get_ylim()[0] < 81  # scaled to the data (81 ± 1 the lowest), not from 0


def test_pivot_and_figures_are_byte_for_byte_identical_on_a_rerun(grid, tmp_path):
    assert run(grid, "--out", tmp_path / "a") == 0
    assert run(grid, "--out", tmp_path / "b") == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["fig_presets.png", "sources.md", "table.csv", "table.md", "table.tex"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_rerun_is_byte_for_byte_identical_however_the_folder_is_spelled(paper, tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    assert run(paper, "--out", first) == 0
    monkeypatch.chdir(paper.parent)
    assert run("runs", "--out", second) == 0
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert {"table.md", "table.csv", "table.tex", "sources.md", "fig_presets.png"} <= set(names)
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert str(tmp_path) not in (first / "sources.md").read_text()  # run folders are relative to the input folder
    assert "runs/ideal_fp_0" in (first / "sources.md").read_text()


def test_mixed_schema_versions_are_refused_and_nothing_is_written(paper, tmp_path, capsys):
    old = record(seed=7)
    old["schema_version"] = 0
    put(paper, "old", old)
    out = tmp_path / "out"
    assert run(paper, "--out", out, "--allow-mixed") == 2
    err = capsys.readouterr().err
    assert "schema versions" in err and "version 0: 1 run(s), e.g. runs/old" in err and "version 1: 8 run(s)" in err
    assert not out.exists()


def test_mixed_code_versions_need_allow_mixed_and_are_then_stated(paper, tmp_path, capsys):
    newer = record(seed=5, metrics=acc(0.9))
    newer["git"]["sha"] = "b" * 40
    put(paper, "newer", newer)
    out = tmp_path / "out"
    assert run(paper, "--out", out) == 2
    err = capsys.readouterr().err
    assert "different code versions" in err and "b" * 40 in err and "--allow-mixed" in err
    assert not out.exists()
    assert run(paper, "--out", out, "--allow-mixed") == 0
    assert "Mixed code versions" in (out / "table.md").read_text()
    sources = (out / "sources.md").read_text()
    assert f"git {SHA}, aimc-runner 0.1.0: 8 run(s)" in sources and f"git {'b' * 40}" in sources


def test_uncommitted_code_needs_allow_mixed(tmp_path, capsys):
    d = tmp_path / "runs"
    rec = record()
    rec["git"]["dirty"] = True
    put(d, "a", rec)
    assert run(d, "--out", tmp_path / "out") == 2
    assert "uncommitted changes" in capsys.readouterr().err
    assert run(d, "--out", tmp_path / "out", "--allow-mixed") == 0


def test_one_configuration_read_from_different_data_is_refused(tmp_path, capsys):
    d = tmp_path / "runs"
    put(d, "s0", record(seed=0))
    other = record(seed=1)
    other["data"]["files"]["SST-2/dev.tsv"] = "3" * 64
    put(d, "s1", other)
    assert run(d, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "different data files" in err and "SST-2/dev.tsv" in err and "runs/s1" in err
    assert not (tmp_path / "out").exists()


def test_two_results_of_one_configuration_and_seed_are_refused(tmp_path, capsys):
    d = tmp_path / "runs"
    put(d, "a", record())
    put(d, "b", record(num_threads=4))
    assert run(d, "--out", tmp_path / "out") == 2
    assert "same seed 0: runs/a, runs/b" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["empty", "missing", "corrupt", "not_an_object"])
def test_bad_input_gives_one_message_and_no_files(case, tmp_path, capsys):
    d = tmp_path / "runs"
    if case != "missing":
        d.mkdir()
    if case == "corrupt":
        put(d, "ok", record())
        (d / "bad").mkdir()
        (d / "bad" / "results.json").write_text('{"schema_version": 1, "task": ')
    if case == "not_an_object":
        (d / "results.json").write_text("[1, 2]")
    out = tmp_path / "out"
    assert run(d, "--out", out) == 2
    err = capsys.readouterr().err
    assert err.count("aimc-report: error:") == 1
    assert {"empty": "no results.json under", "missing": "no such folder", "corrupt": "bad/results.json: unreadable",
            "not_an_object": "not a results record"}[case] in err
    assert not out.exists()


def test_figures_the_data_no_longer_supports_are_removed(paper, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "fig_drift.png").write_bytes(b"stale")
    (out / "notes.txt").write_text("mine")
    assert run(paper, "--out", out) == 0
    assert not (out / "fig_drift.png").exists() and (out / "notes.txt").read_text() == "mine"


def test_console_script_is_installed(paper, tmp_path):
    exe = Path(sys.executable).with_name("aimc-report")
    proc = subprocess.run([str(exe), str(paper), "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "table.md").exists()


@pytest.mark.slow
def test_real_sweep_end_to_end(tmp_path):
    """The 2 × 2 tiny sweep (tile ideal/read_noise × train fp/hwa, two seeds) through aimc-run, then the report."""
    exe = Path(sys.executable).with_name("aimc-run")
    sweep = tmp_path / "sweep"
    args = ["-m", "experiment=paper_table", "task=sst2", "model=tiny", "train.max_steps=2", "train.batch_size=4",
            "seed=0,1", "tile=ideal,read_noise", "train=fp,hwa", f"hydra.sweep.dir={sweep}", "progress=false",
            f"cache_dir={tmp_path / 'cache'}", "tile.circuit.rows=64", "tile.circuit.cols=64", "num_threads=1"]
    env = {**os.environ, "GLUE_DIR": str(GLUE_FIXTURES), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(exe), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = [json.loads(p.read_text()) for p in sweep.rglob("results.json")]
    assert len(recs) == 8
    flag = ["--allow-mixed"] if any(r["git"]["dirty"] for r in recs) else []  # a working tree with edits
    assert run(sweep, "--out", tmp_path / "a", *flag) == 0
    assert run(sweep, "--out", tmp_path / "b", *flag) == 0
    got = rows(tmp_path / "a")
    assert [(r["tile"], r["train"], r["n_seeds"]) for r in got] == [
        ("ideal", "fp", "2"), ("ideal", "hwa", "2"), ("read_noise", "fp", "2"), ("read_noise", "hwa", "2")]
    for name in os.listdir(tmp_path / "a"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    by_seeds = {}
    for r in recs:
        by_seeds.setdefault((r["tile"], r["train"]), []).append(r["metrics"]["dev"]["accuracy"])
    mean = sum(by_seeds["read_noise", "hwa"]) / 2
    assert float(got[3]["mean_x100"]) == pytest.approx(100 * mean, abs=1e-4)
