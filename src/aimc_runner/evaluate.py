"""Batched evaluation of the dev split(s) with the task's official metrics."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding

from . import metrics as glue_metrics


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
