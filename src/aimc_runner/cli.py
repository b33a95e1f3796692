"""``aimc-run``: compose a task, a model, a tile and a training recipe; fine-tune; evaluate; write results.json."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from . import analog, calibration, evaluate, launch, models, results, tasks, train
from .atomic import write_json_atomic
from .config import InputRange, RunConfig, TrainMode, register_configs

log = logging.getLogger("aimc_runner")
CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")

register_configs()


def set_threads(n: int | None) -> None:
    """Pin torch, numba and BLAS thread pools (parallel sweep jobs must not oversubscribe cores)."""
    if n is None:
        return
    import numba
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(n)  # numpy/scipy BLAS too (the 2-D crossbar solve): idle BLAS threads spin on busy cores


def run_experiment(run: RunConfig, out_dir: Path) -> dict:
    """The whole method: data, model, fine-tune (cached), evaluate on the tile, record. What the tests call."""
    t_start = time.perf_counter()
    code = {"versions": results.versions(), "git": results.git_revision()}  # the code that runs, read at the start
    set_threads(run.num_threads)
    spec = tasks.TASKS[run.task.name.value]
    models.load_config(run.model, spec.num_labels)  # fails fast: unknown/offline model, sequence limit

    trains = run.train.mode != TrainMode.none
    calibrates = run.tile.analog and run.tile.pwm.enabled and run.tile.pwm.input_range == InputRange.calibrated
    data = _load_data(run, need_train=trains or calibrates, train_required=trains)
    loaded = models.load(run.model, spec.num_labels, seed=run.seed)
    model, tokenizer = loaded.model, loaded.tokenizer
    tokenize = lambda ds: tasks.tokenize(ds, tokenizer, run.model.max_seq_length)  # noqa: E731
    train_set = tokenize(data.train) if data.train is not None else None
    eval_sets = {s: tokenize(ds) for s, ds in data.eval.items()}

    analog_layers = []
    if run.tile.analog or run.train.mode in train.ANALOG_TRAINING:
        analog_layers = analog.convert(model, run.tile)
    generators = {}
    if run.train.mode in train.ANALOG_TRAINING:
        if run.train.quantize_inputs or run.train.quantize_outputs:  # ranges of the pretrained model
            analog.set_input_ranges(model, calibration.input_ranges(
                model, train_set, tokenizer, run.tile.pwm, batch_size=run.train.batch_size, seed=run.seed))
        generators["train_noise"] = analog.set_mode(
            model, run.train.mode, run.tile, noise_std=run.train.noise_std, seed=run.seed,
            quantize_inputs=run.train.quantize_inputs, quantize_outputs=run.train.quantize_outputs,
            tau_refresh_steps=run.train.tau_refresh_steps)

    train_files = data.train_files or {"source": data.source}
    outcome = train.fit(
        model, tokenizer, train_set, run, train.default_cache_root(run.cache_dir),
        payload=train.cache_payload(run, train_files, extra=train.tile_dependencies(run)),
        load_weights=lambda folder: _load_weights(model, folder), generators=generators,
    )
    if analog_layers:
        analog.set_mode(model, "digital")

    ranges = None
    if calibrates:
        # From training batches; a task with no local training split (QNLI here) calibrates on its dev split.
        source = train_set if train_set is not None else next(iter(eval_sets.values()))
        ranges = calibration.input_ranges(
            model, source, tokenizer, run.tile.pwm, batch_size=run.train.batch_size, seed=run.seed,
            store=outcome.weights_dir.parent if outcome.weights_dir else None)
        analog.set_input_ranges(model, ranges)
        write_json_atomic(out_dir / "input_ranges.json", ranges)

    ev = evaluate.under_tile(model, tokenizer, eval_sets, spec.name, run)
    record = {
        "task": spec.name,
        "model": run.model.name,
        "tile": run.tile.name,
        "train": run.train.mode.value,
        "main_metric": spec.main_metric,
        "metrics": ev["metrics"],
        "metrics_std": ev["metrics_std"],
        "metrics_per_draw": ev["per_draw"],
        "seeds": {"run": run.seed, "chips": ev["chip_seeds"]},
        "examples": {"train": len(data.train) if trains else 0,
                     **{s: len(d) for s, d in data.eval.items()}},
        "analog_layers": len(analog_layers) if run.tile.analog else 0,
        "input_ranges": {"source": "train" if train_set is not None else "dev", "layers": len(ranges)}
        if ranges else None,
        "training": {**asdict(outcome), "weights_dir": str(outcome.weights_dir) if outcome.weights_dir else None},
        "wall_s": {"train": outcome.wall_s, "eval": ev["wall_s"], "total": time.perf_counter() - t_start},
        "data": {"source": data.source, "files": data.files},
        "model_path": loaded.path,
        **code,
        "machine": results.machine(),
        "config": _plain(run),
    }
    path = results.write(out_dir, record)
    log.info("%s %s %s: %s  -> %s", spec.name, run.tile.name, run.train.mode.value, ev["metrics"], path)
    return record


def _load_data(run: RunConfig, *, need_train: bool, train_required: bool) -> tasks.GlueData:
    """GLUE splits; the training split only calibrates input ranges when not training, so it may be absent."""
    try:
        return tasks.load(run.task, need_train=need_train)
    except tasks.DataNotFoundError:
        if train_required or not need_train:
            raise
        log.warning("no training split for %s: input ranges will be calibrated on the dev split", run.task.name.value)
        return tasks.load(run.task, need_train=False)


def _load_weights(model, folder: Path) -> None:
    from safetensors.torch import load_file

    missing, unexpected = model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=False)
    # Tied or buffer entries may be absent from safetensors; anything else means a mismatched cache entry.
    real_missing = [k for k in missing if not k.endswith("position_ids")]
    if real_missing or unexpected:
        raise RuntimeError(f"cached weights in {folder} do not match the model: missing={real_missing[:5]}, "
                           f"unexpected={unexpected[:5]}")


def _finished(out_dir: Path, config: dict) -> dict | None:
    """A complete result of this config already in ``out_dir`` (a rerun sweep skips it); a result of another
    config there is refused rather than overwritten."""
    prior = results.existing(out_dir)
    if prior is None:
        return None
    diff = (["schema_version"] if prior.get("schema_version") != results.SCHEMA_VERSION
            else results.config_diff(prior.get("config") or {}, config))
    if diff:
        raise FileExistsError(
            f"{out_dir / results.RESULTS} holds the result of a different run (differs in: {', '.join(diff[:8])}); "
            "it is kept. Write elsewhere (hydra.sweep.dir=... or hydra.run.dir=...), or remove it to rerun")
    log.info("%s is complete for this config: skipped (skip_complete=false reruns it)", out_dir / results.RESULTS)
    return prior


def _plain(run: RunConfig) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(run), enum_to_str=True)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    run: RunConfig = OmegaConf.to_object(cfg)  # every range check fires here, before any work
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    if run.num_threads is None:  # parallel sweep jobs share the cores the launcher gave them
        run.num_threads = launch.job_threads(OmegaConf.to_container(hydra_cfg.launcher))
    record = _finished(out_dir, _plain(run)) if run.skip_complete else None
    if record is None:
        log.info("resolved config:\n%s", OmegaConf.to_yaml(cfg))
        record = run_experiment(run, out_dir)
    first = next(iter(record["metrics"].values()))
    return first.get(record["main_metric"])


if __name__ == "__main__":
    main()
