"""End to end on the tiny model and the fixture TSVs: train, evaluate, cache, resume, the results contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from aimc_runner import models, tasks, train
from aimc_runner.cli import run_experiment
from aimc_runner.config import RunConfig, register_configs
from conftest import CONF_DIR, GLUE_FIXTURES

register_configs()
pytestmark = pytest.mark.slow  # end to end (tens of seconds); CI runs them, `pytest -m 'not slow'` skips
QUICK = ["model=tiny", f"task.data_dir={GLUE_FIXTURES}", "train.max_steps=4", "train.batch_size=4", "progress=false",
         "train.learning_rate=1e-3"]


def make(*overrides: str) -> RunConfig:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return OmegaConf.to_object(compose("config", overrides=QUICK + list(overrides)))


@pytest.mark.parametrize("task", [t.value for t in __import__("aimc_runner.config", fromlist=["TaskName"]).TaskName])
def test_every_task_trains_and_evaluates(task, tmp_path):
    rec = run_experiment(make(f"task={task}"), tmp_path)
    spec = tasks.TASKS[task]
    assert set(rec["metrics"]) == set(spec.eval_splits)
    for split_metrics in rec["metrics"].values():
        assert set(split_metrics) == set(spec.metrics)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["schema_version"] == 1
    assert on_disk["metrics"] == rec["metrics"]
    for key in ("task", "model", "tile", "train", "seeds", "examples", "wall_s", "versions", "git", "config"):
        assert key in on_disk
    assert on_disk["examples"]["train"] > 0
    assert on_disk["versions"]["torch"] == torch.__version__


def test_second_run_reuses_the_cached_model_and_gives_identical_results(tmp_path):
    first = run_experiment(make("task=sst2"), tmp_path / "a")
    second = run_experiment(make("task=sst2"), tmp_path / "b")
    assert first["training"]["reused"] is False
    assert second["training"]["reused"] is True
    assert second["training"]["key"] == first["training"]["key"]
    assert second["metrics"] == first["metrics"]


def test_cache_key_changes_with_what_determines_the_weights(tmp_path):
    base = run_experiment(make("task=sst2"), tmp_path / "a")["training"]["key"]
    assert run_experiment(make("task=sst2", "seed=1"), tmp_path / "b")["training"]["key"] != base
    assert run_experiment(make("task=sst2", "train.learning_rate=2e-3"), tmp_path / "c")["training"]["key"] != base
    # logging cadence does not change the weights: same key
    assert run_experiment(make("task=sst2", "train.checkpoint_every_steps=7"), tmp_path / "d")["training"]["key"] == base


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest"])
def test_corrupt_cached_checkpoint_is_detected_and_retrained(tmp_path, damage):
    first = run_experiment(make("task=rte"), tmp_path / "a")
    final = Path(first["training"]["weights_dir"])
    weights = final / "model.safetensors"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:1000])
    elif damage == "flip":
        blob = bytearray(weights.read_bytes())
        blob[-10] ^= 0xFF
        weights.write_bytes(bytes(blob))
    else:
        (final / train.MANIFEST).unlink()
    again = run_experiment(make("task=rte"), tmp_path / "b")
    assert again["training"]["reused"] is False  # retrained, not silently used
    assert again["metrics"] == first["metrics"]  # and deterministically the same model
    assert train.verify(final) is None


def test_interrupted_finetune_resumes_from_its_checkpoint(tmp_path):
    run = make("task=sst2", "train.max_steps=6", "train.checkpoint_every_steps=2")
    spec = tasks.TASKS["sst2"]
    data = tasks.load(run.task)
    cache = tmp_path / "cache"

    def fresh():
        loaded = models.load(run.model, spec.num_labels, seed=run.seed)
        ds = tasks.tokenize(data.train, loaded.tokenizer, run.model.max_seq_length)
        return loaded.model, loaded.tokenizer, ds

    payload = train.cache_payload(run, {"x": "y"})
    calls = {"n": 0}

    def crash_at_step_5(_model):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt

    model, tok, ds = fresh()
    with pytest.raises(KeyboardInterrupt):
        train.fit(model, tok, ds, run, cache, payload=payload, load_weights=None, before_step=crash_at_step_5)
    model, tok, ds = fresh()
    out = train.fit(model, tok, ds, run, cache, payload=payload, load_weights=None)
    assert out.resumed_from_step == 4 and out.steps == 6

    ref_model, tok, ds = fresh()
    train.fit(ref_model, tok, ds, run, tmp_path / "ref", payload=payload, load_weights=None)
    for (name, a), (_, b) in zip(model.state_dict().items(), ref_model.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_hub_only_model_offline_fails_fast_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(models.ModelNotAvailableError, match="unreachable"):
        run_experiment(make("model=bert_base", "model.name_or_path=no-such-org/no-such-model-xyz"), tmp_path)
    assert time.perf_counter() - t0 < 10
    assert not (tmp_path / "results.json").exists()


def test_max_seq_length_beyond_the_loaded_models_limit_names_the_field(tmp_path):
    with pytest.raises(ValueError, match=r"model\.max_seq_length"):
        run_experiment(make("model.max_position_embeddings=null", "model.max_seq_length=512"), tmp_path)


def test_missing_data_names_glue_dir_and_layout(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        run_experiment(make("task=sst2", f"task.data_dir={tmp_path / 'nowhere'}"), tmp_path)
    assert "GLUE_DIR" in str(err.value) and "SST-2" in str(err.value)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("aimc-run")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_cli_help_lists_groups_and_options(tmp_path):
    out = _cli("--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for word in ("task:", "model:", "tile:", "train:", "sst2", "minilm", "tiny", "ideal", "fp"):
        assert word in out.stdout


def test_cli_runs_and_writes_results_next_to_the_hydra_config(tmp_path):
    out = _cli(*QUICK, "task=mrpc", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "run" / ".hydra" / "config.yaml").is_file()
    rec = json.loads((tmp_path / "run" / "results.json").read_text())
    assert set(rec["metrics"]["dev"]) == {"accuracy", "f1"}


def test_cli_bad_value_fails_before_any_work(tmp_path):
    out = _cli(*QUICK, "train.learning_rate=0", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert out.returncode != 0
    assert "train.learning_rate" in out.stderr + out.stdout
    assert not (tmp_path / "run" / "results.json").exists()


def test_parallel_jobs_sharing_a_training_configuration_train_it_once(tmp_path):
    exe = Path(sys.executable).with_name("aimc-run")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "AIMC_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    args = [*QUICK, "task=sst2", "train.max_steps=40"]
    procs = [subprocess.Popen([str(exe), *args, f"hydra.run.dir={tmp_path / str(i)}"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:
        assert p.wait(timeout=600) == 0, p.stderr.read()[-2000:]
    recs = [json.loads((tmp_path / str(i) / "results.json").read_text()) for i in range(2)]
    assert sorted(r["training"]["reused"] for r in recs) == [False, True]
    assert recs[0]["metrics"] == recs[1]["metrics"]
