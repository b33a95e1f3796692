"""Batched evaluation of the dev split(s) with the task's official metrics."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding

from . import analog
from . import metrics as glue_metrics
from .config import RunConfig


@torch.no_grad()
def predict(model: torch.nn.Module, tokenizer: Any, ds: Any, batch_size: int, *, progress: bool = True,
            desc: str = "eval") -> tuple[np.ndarray, np.ndarray]:
    """Logits ``[N, C]`` (``[N, 1]`` for regression) and labels ``[N]`` in the dataset's order.

    Examples are batched by length (less padding, same results: each example is computed independently).
    """
    model.eval()
    collate = DataCollatorWithPadding(tokenizer)
    lengths = np.fromiter((len(ids) for ids in ds["input_ids"]), dtype=np.int64, count=len(ds))
    order = np.argsort(-lengths, kind="stable")
    logits = [None] * len(ds)
    for start in tqdm(range(0, len(ds), batch_size), desc=desc, unit="batch", disable=not progress, leave=False):
        idx = order[start : start + batch_size]
        batch = collate([ds[int(i)] for i in idx])
        batch.pop("labels", None)
        out = model(**batch).logits.float().cpu().numpy()
        for i, row in zip(idx, out):
            logits[i] = row
    labels = np.asarray(ds["labels"])
    return np.stack(logits) if logits else np.zeros((0, 1)), labels


def evaluate(model: torch.nn.Module, tokenizer: Any, eval_sets: dict, task: str, batch_size: int, *,
             progress: bool = True) -> tuple[dict, float]:
    """Metrics per dev split, e.g. ``{"dev": {"accuracy": 0.91}}``, and the wall time in seconds."""
    t0 = time.perf_counter()
    out = {}
    for split, ds in eval_sets.items():
        logits, labels = predict(model, tokenizer, ds, batch_size, progress=progress, desc=f"eval {split}")
        out[split] = glue_metrics.compute(task, logits, labels)
    return out, time.perf_counter() - t0


def chip_seeds(run_seed: int, n: int) -> list[int]:
    """Independent, reproducible seeds of ``n`` simulated chips (programming, drift and read noise)."""
    return [int(np.random.SeedSequence([run_seed, i]).generate_state(1)[0]) for i in range(n)]


def under_tile(model: torch.nn.Module, tokenizer: Any, eval_sets: dict, task: str, run: RunConfig) -> dict:
    """Evaluate under ``run.tile``: digital once, or Monte-Carlo over ``run.eval.seeds`` chips.

    A tile without device noise (PWM, IR-drop, ADC only) gives every chip the same outputs, so it is evaluated on
    one chip unless an output calibration (fitted on random probes per chip) makes chips differ.

    Returns ``metrics`` (mean over chips), ``metrics_std`` (sample std, ddof=1; 0 for one draw), ``per_draw``,
    ``chip_seeds`` and ``wall_s``. The model is left digital.
    """
    t0 = time.perf_counter()
    if not run.tile.analog:
        metrics, _ = evaluate(model, tokenizer, eval_sets, task, run.eval.batch_size, progress=run.progress)
        per_draw, seeds = [metrics], []
    else:
        stochastic = run.tile.stochastic or run.eval.calibration.value != "none"
        seeds = chip_seeds(run.seed, run.eval.seeds if stochastic else 1)
        per_draw = []
        for i, seed in enumerate(tqdm(seeds, desc=f"chips ({run.tile.name})", unit="chip", disable=not run.progress)):
            analog.program(model, run.tile, seed, output_calibration=run.eval.calibration.value)
            metrics, _ = evaluate(model, tokenizer, eval_sets, task, run.eval.batch_size, progress=run.progress)
            per_draw.append(metrics)
        analog.set_mode(model, "digital")
    mean = {s: {k: float(np.mean([d[s][k] for d in per_draw])) for k in per_draw[0][s]} for s in per_draw[0]}
    std = {s: {k: float(np.std([d[s][k] for d in per_draw], ddof=1)) if len(per_draw) > 1 else 0.0
               for k in per_draw[0][s]} for s in per_draw[0]}
    return {"metrics": mean, "metrics_std": std, "per_draw": per_draw, "chip_seeds": seeds,
            "wall_s": time.perf_counter() - t0}
