"""``aimc-run``: compose a task, a model, a tile and a training recipe; fine-tune; evaluate; write results.json."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from . import evaluate, models, results, tasks, train
from .config import RunConfig, TrainMode, register_configs

log = logging.getLogger("aimc_runner")
CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")

register_configs()


def set_threads(n: int | None) -> None:
    """Pin torch and numba thread pools (parallel sweep jobs must not oversubscribe cores)."""
    if n is None:
        return
    import numba
    import torch

    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def run_experiment(run: RunConfig, out_dir: Path) -> dict:
    """The whole method: data, model, fine-tune (cached), evaluate, record. What the tests call."""
    t_start = time.perf_counter()
    set_threads(run.num_threads)
    spec = tasks.TASKS[run.task.name.value]
    models.load_config(run.model, spec.num_labels)  # fails fast: unknown/offline model, sequence limit

    need_train = run.train.mode != TrainMode.none
    data = tasks.load(run.task, need_train=need_train)
    loaded = models.load(run.model, spec.num_labels, seed=run.seed)
    model, tokenizer = loaded.model, loaded.tokenizer
    eval_sets = {s: tasks.tokenize(ds, tokenizer, run.model.max_seq_length) for s, ds in data.eval.items()}

    train_files = {k: v for k, v in data.files.items() if "train" in Path(k).name} or {"source": data.source}
    payload = train.cache_payload(run, train_files)
    outcome = train.fit(
        model, tokenizer,
        tasks.tokenize(data.train, tokenizer, run.model.max_seq_length) if need_train else None,
        run, train.default_cache_root(run.cache_dir),
        payload=payload,
        load_weights=lambda folder: _load_weights(model, folder),
    )

    metrics, eval_s = evaluate.evaluate(model, tokenizer, eval_sets, spec.name, run.eval.batch_size,
                                        progress=run.progress)
    record = {
        "task": spec.name,
        "model": run.model.name,
        "tile": run.tile.name,
        "train": run.train.mode.value,
        "main_metric": spec.main_metric,
        "metrics": metrics,
        "seeds": {"run": run.seed, "eval_draws": 1 if not run.tile.analog else run.eval.seeds},
        "examples": {"train": len(data.train) if need_train else 0, **{s: len(d) for s, d in data.eval.items()}},
        "training": {**asdict(outcome), "weights_dir": str(outcome.weights_dir) if outcome.weights_dir else None},
        "wall_s": {"train": outcome.wall_s, "eval": eval_s, "total": time.perf_counter() - t_start},
        "data": {"source": data.source, "files": data.files},
        "model_path": loaded.path,
        "versions": results.versions(),
        "git": results.git_revision(),
        "machine": results.machine(),
        "config": _plain(run),
    }
    path = results.write(out_dir, record)
    log.info("%s %s: %s  -> %s", spec.name, run.tile.name, metrics, path)
    return record


def _load_weights(model, folder: Path) -> None:
    from safetensors.torch import load_file

    missing, unexpected = model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=False)
    # Tied or buffer entries may be absent from safetensors; anything else means a mismatched cache entry.
    real_missing = [k for k in missing if not k.endswith("position_ids")]
    if real_missing or unexpected:
        raise RuntimeError(f"cached weights in {folder} do not match the model: missing={real_missing[:5]}, "
                           f"unexpected={unexpected[:5]}")


def _plain(run: RunConfig) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(run), enum_to_str=True)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    run: RunConfig = OmegaConf.to_object(cfg)  # every range check fires here, before any work
    log.info("resolved config:\n%s", OmegaConf.to_yaml(cfg))
    record = run_experiment(run, Path(HydraConfig.get().runtime.output_dir))
    first = next(iter(record["metrics"].values()))
    return first.get(record["main_metric"])


if __name__ == "__main__":
    main()
