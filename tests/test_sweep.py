"""Sweeps: launchers (serial, joblib, submitit), thread counts, skipping finished jobs, checks before any work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aimc_runner import cli, results
from aimc_runner.launch import job_threads
from conftest import GLUE_FIXTURES

QUICK = ["model=tiny", f"task.data_dir={GLUE_FIXTURES}", "train.max_steps=2", "train.batch_size=4", "progress=false",
         "task=sst2", "tile.circuit.rows=64", "tile.circuit.cols=64", "eval.seeds=1"]


def aimc_run(tmp_path: Path, *overrides: str, timeout: float = 300, **popen) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "aimc_runner.cli", "-m", *QUICK, f"cache_dir={tmp_path / 'cache'}",
           f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=timeout, **popen)


def records(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(sweep.rglob(results.RESULTS))}


# ---- threads per job ---------------------------------------------------------------------------------------------


def test_threads_follow_the_launcher():
    assert job_threads({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, {}, 16) is None
    assert job_threads({"_target_": "x.JoblibLauncher", "n_jobs": -1}, {}, 16) == 1
    assert job_threads({"_target_": "x.JoblibLauncher", "n_jobs": 4}, {}, 16) == 4
    assert job_threads({"_target_": "x.JoblibLauncher", "n_jobs": -2}, {}, 16) == 1  # 15 jobs on 16 cores
    assert job_threads({"_target_": "x.JoblibLauncher", "n_jobs": 32}, {}, 16) == 1
    assert job_threads({"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
                        "cpus_per_task": 8}, {}, 64) == 8
    assert job_threads({"_target_": "basic"}, {"SLURM_CPUS_PER_TASK": "6"}, 64) == 6  # inside an sbatch job


# ---- a result folder is skipped when complete, never overwritten by another config -------------------------------


def test_complete_result_of_the_same_config_is_skipped_and_another_config_is_refused(tmp_path):
    config = {"seed": 0, "task": {"name": "sst2"}, "num_threads": 1, "progress": True}
    results.write(tmp_path, {"metrics": {"dev": {"accuracy": 0.9}}, "config": config})
    before = (tmp_path / results.RESULTS).read_bytes()
    # Execution-only settings (threads, progress bars) do not make it a different run.
    assert cli._finished(tmp_path, {**config, "num_threads": 8, "progress": False})["metrics"]["dev"]["accuracy"] == 0.9
    with pytest.raises(FileExistsError, match=r"differs in: task\.name"):
        cli._finished(tmp_path, {**config, "task": {"name": "rte"}})
    assert (tmp_path / results.RESULTS).read_bytes() == before
    assert cli._finished(tmp_path / "empty", config) is None
    (tmp_path / results.RESULTS).write_text('{"schema_version": 1, "trunc')  # unreadable: not a finished run
    assert cli._finished(tmp_path, config) is None


# ---- bad sweeps fail before any work -------------------------------------------------------------------------------


def test_a_bad_value_anywhere_in_the_sweep_fails_before_any_job_or_folder(tmp_path):
    out = aimc_run(tmp_path, "seed=0,1,2", "eval.seeds=3,0")
    assert out.returncode != 0
    assert "eval.seeds" in out.stderr and "must be > 0" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "cache").exists()


def test_unknown_launcher_or_field_is_one_clear_message_and_no_folder(tmp_path):
    out = aimc_run(tmp_path, "hydra/launcher=nosuch")
    assert out.returncode != 0 and "hydra/launcher/nosuch" in out.stderr and "joblib" in out.stderr
    out = aimc_run(tmp_path, "train.nosuch=1,2")
    assert out.returncode != 0 and "Key 'nosuch' not in 'TrainConfig'" in out.stderr
    assert not (tmp_path / "sweep").exists()


# ---- launchers and sweep economy (end to end) ------------------------------------------------------------------


@pytest.mark.slow
def test_submitit_local_runs_a_two_job_sweep_with_its_cpus_per_task(tmp_path):
    out = aimc_run(tmp_path, "hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=1",
                   "hydra.launcher.timeout_min=10", "seed=0,1")
    assert out.returncode == 0, out.stderr[-3000:]
    recs = records(tmp_path / "sweep")
    assert len(recs) == 2 and {r["seeds"]["run"] for r in recs.values()} == {0, 1}
    assert all(r["config"]["num_threads"] == 1 for r in recs.values())
    assert (tmp_path / "sweep" / ".submitit").is_dir()  # went through submitit, not the serial launcher


@pytest.mark.slow
def test_parallel_jobs_that_share_a_training_configuration_train_it_once(tmp_path):
    out = aimc_run(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "train=hwa",
                   "tile=read_noise,adc", "train.max_steps=20")
    assert out.returncode == 0, out.stderr[-3000:]
    recs = list(records(tmp_path / "sweep").values())
    assert len(recs) == 2
    assert len({r["training"]["key"] for r in recs}) == 1
    assert sorted(r["training"]["reused"] for r in recs) == [False, True]
    assert all(r["config"]["num_threads"] == max(1, (os.cpu_count() or 1) // 2) for r in recs)


@pytest.mark.slow
def test_a_killed_sweep_reruns_to_completion_without_redoing_finished_jobs(tmp_path):
    overrides = ["seed=0,1,2", "train.max_steps=60", "hydra.sweep.subdir=seed${seed}"]
    cmd = [sys.executable, "-m", "aimc_runner.cli", "-m", *QUICK, f"cache_dir={tmp_path / 'cache'}",
           f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    first = tmp_path / "sweep" / "seed0" / results.RESULTS
    deadline = time.monotonic() + 240
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert first.exists(), "the first job did not finish before the deadline"
    done_before = records(tmp_path / "sweep")
    assert len(done_before) < 3, "the sweep finished before it could be killed"
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "sweep").rglob(results.RESULTS)}

    out = aimc_run(tmp_path, *overrides)
    assert out.returncode == 0, out.stderr[-3000:]
    assert set(records(tmp_path / "sweep")) == {"seed0", "seed1", "seed2"}
    for path, stamp in stamps.items():  # finished jobs were skipped, their results untouched
        assert path.stat().st_mtime_ns == stamp
    assert out.stdout.count("skipped") + out.stderr.count("skipped") >= len(stamps)


def test_set_threads_pins_torch_numba_and_blas():
    import numba
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    before_torch, before_numba = torch.get_num_threads(), numba.get_num_threads()
    with threadpool_limits(limits=None):  # restores the BLAS pools on exit
        cli.set_threads(1)
        try:
            assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1
            assert all(pool["num_threads"] == 1 for pool in threadpool_info())
        finally:
            torch.set_num_threads(before_torch)
            numba.set_num_threads(before_numba)
