"""End to end under analog tiles (tiny model, fixture data): presets, Monte-Carlo chips, cache reuse, seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from aimc_runner.cli import run_experiment
from aimc_runner.config import RunConfig, register_configs
from conftest import CONF_DIR, GLUE_FIXTURES

register_configs()
pytestmark = pytest.mark.slow  # end to end (tens of seconds); CI runs them, `pytest -m 'not slow'` skips
QUICK = ["model=tiny", f"task.data_dir={GLUE_FIXTURES}", "train.max_steps=3", "train.batch_size=4", "progress=false",
         "train.learning_rate=1e-3", "eval.seeds=2", "task=sst2", "tile.circuit.rows=64", "tile.circuit.cols=64"]
PRESETS = sorted(p.stem for p in (Path(CONF_DIR) / "tile").glob("*.yaml"))


def make(*overrides: str) -> RunConfig:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return OmegaConf.to_object(compose("config", overrides=QUICK + list(overrides)))


@pytest.mark.parametrize("preset", PRESETS)
def test_every_tile_preset_runs_end_to_end(preset, tmp_path):
    rec = run_experiment(make(f"tile={preset}"), tmp_path)
    analog = preset != "ideal"
    noisy = preset in ("read_noise", "pcm_irdrop", "pcm_drift")  # only device noise makes chips differ
    assert rec["train"] == ("hwa" if analog else "fp")
    assert len(rec["metrics_per_draw"]) == (2 if noisy else 1)
    assert len(rec["seeds"]["chips"]) == (2 if noisy else 1 if analog else 0)
    assert rec["analog_layers"] == (12 if analog else 0)
    assert set(rec["metrics_std"]["dev"]) == {"accuracy"}
    if analog:
        assert (tmp_path / "input_ranges.json").is_file()
        assert len(json.loads((tmp_path / "input_ranges.json").read_text())) == 12


def test_same_seed_gives_identical_analog_metrics_and_reuses_the_trained_model(tmp_path):
    a = run_experiment(make("tile=pcm_irdrop"), tmp_path / "a")
    b = run_experiment(make("tile=pcm_irdrop"), tmp_path / "b")
    assert b["training"]["reused"] and a["metrics_per_draw"] == b["metrics_per_draw"]
    # Evaluating the same hwa-trained model under another tile never retrains it.
    c = run_experiment(make("tile=read_noise"), tmp_path / "c")
    assert c["training"]["reused"] and c["training"]["key"] == a["training"]["key"]
    # Ranges were stored with the fine-tuned model and are reused.
    assert json.loads((tmp_path / "a" / "input_ranges.json").read_text()) == json.loads(
        (tmp_path / "c" / "input_ranges.json").read_text())


def test_tile_aware_training_depends_on_the_circuit_but_hwa_does_not(tmp_path):
    hwa = run_experiment(make("tile=irdrop", "train=hwa"), tmp_path / "a")["training"]["key"]
    hwa_other_r = run_experiment(make("tile=irdrop", "train=hwa", "tile.circuit.r_wire_ohm=1.0"),
                                 tmp_path / "b")["training"]["key"]
    ta = run_experiment(make("tile=irdrop", "train=tile_aware"), tmp_path / "c")["training"]["key"]
    ta_other_r = run_experiment(make("tile=irdrop", "train=tile_aware", "tile.circuit.r_wire_ohm=1.0"),
                                tmp_path / "d")["training"]["key"]
    assert hwa == hwa_other_r
    assert len({hwa, ta, ta_other_r}) == 3
    # Per-column scaling changes the hwa noise (relative to each column's max|W|): another model; fp ignores it.
    hwa_col = run_experiment(make("tile=irdrop", "train=hwa", "tile.circuit.weight_scaling=column"),
                             tmp_path / "e")["training"]["key"]
    assert hwa_col not in {hwa, ta, ta_other_r}
    fp = run_experiment(make("tile=irdrop", "train=fp"), tmp_path / "f")
    fp_col = run_experiment(make("tile=irdrop", "train=fp", "tile.circuit.weight_scaling=column"), tmp_path / "g")
    assert fp["training"]["key"] == fp_col["training"]["key"] and fp_col["training"]["reused"]


def test_different_run_seeds_give_different_chips(tmp_path):
    a = run_experiment(make("tile=read_noise", "train=none"), tmp_path / "a")
    b = run_experiment(make("tile=read_noise", "train=none", "seed=1"), tmp_path / "b")
    assert a["seeds"]["chips"] != b["seeds"]["chips"]


def test_tile_aware_without_irdrop_is_hwa_and_shares_its_cached_model(tmp_path):
    hwa = run_experiment(make("tile=adc", "train=hwa"), tmp_path / "a")
    ta = run_experiment(make("tile=adc", "train=tile_aware"), tmp_path / "b")
    assert ta["training"]["reused"] and ta["training"]["key"] == hwa["training"]["key"]


def test_a_task_without_a_training_split_calibrates_on_dev_when_not_training(tmp_path):
    import shutil

    glue = tmp_path / "glue"
    (glue / "QNLI").mkdir(parents=True)
    shutil.copy(GLUE_FIXTURES / "QNLI" / "dev.tsv", glue / "QNLI" / "dev.tsv")
    rec = run_experiment(make("task=qnli", f"task.data_dir={glue}", "tile=adc", "train=none"), tmp_path / "run")
    assert rec["input_ranges"]["source"] == "dev" and rec["examples"]["train"] == 0
    with pytest.raises(FileNotFoundError, match="train.tsv"):  # training still needs the training split
        run_experiment(make("task=qnli", f"task.data_dir={glue}", "tile=adc", "train=fp"), tmp_path / "run2")


@pytest.mark.parametrize("calibration", ["global", "per_column"])
def test_output_calibration_is_a_named_mitigation(calibration, tmp_path):
    rec = run_experiment(make("tile=irdrop", "train=none", f"eval.calibration={calibration}",
                              "tile.circuit.r_wire_ohm=50"), tmp_path)
    assert rec["config"]["eval"]["calibration"] == calibration
