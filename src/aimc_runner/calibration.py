"""Per-layer PWM input ranges, calibrated on a few training batches and stored with the fine-tuned model.

``r_in`` of each analog layer is a high percentile of |x| over ``tile.pwm.calibration_batches`` batches of the
training set (spec 2), taken in a fixed order from the run seed, with the model digital. The ranges are written
next to the cached fine-tuned model (``<cache>/<key>/input_ranges-<hash>.json``) and into the run folder, so an
evaluation under any tile reuses exactly the same ranges.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Optional

import torch
from transformers import DataCollatorWithPadding

from . import analog
from .atomic import write_json_atomic
from .config import PwmConfig

log = logging.getLogger(__name__)


def calibration_batches(ds: Any, tokenizer: Any, n_batches: int, batch_size: int, seed: int) -> list[dict]:
    """``n_batches`` padded batches drawn without replacement in a seeded order."""
    collate = DataCollatorWithPadding(tokenizer)
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed)).tolist()
    batches = []
    for b in range(n_batches):
        idx = order[b * batch_size : (b + 1) * batch_size]
        if not idx:
            break
        batch = collate([ds[i] for i in idx])
        batch.pop("labels", None)
        batches.append(batch)
    return batches


def _file(folder: Path, pwm: PwmConfig, batch_size: int, seed: int) -> Path:
    tag = json.dumps([pwm.calibration_percentile, pwm.calibration_batches, batch_size, seed])
    return folder / f"input_ranges-{hashlib.sha256(tag.encode()).hexdigest()[:12]}.json"


def input_ranges(model: torch.nn.Module, ds: Any, tokenizer: Any, pwm: PwmConfig, *, batch_size: int, seed: int,
                 store: Optional[Path] = None) -> dict[str, float]:
    """Calibrated ranges of every analog layer of ``model`` (already converted), loaded from ``store`` if there."""
    path = _file(store, pwm, batch_size, seed) if store is not None else None
    if path is not None and path.is_file():
        ranges = json.loads(path.read_text())["ranges"]
        if set(ranges) == set(analog.analog_layers(model)):
            log.info("input ranges from %s", path)
            return ranges
    batches = calibration_batches(ds, tokenizer, pwm.calibration_batches, batch_size, seed)
    ranges = analog.calibrate(model, batches, pwm.calibration_percentile)
    if path is not None:
        write_json_atomic(path, {"percentile": pwm.calibration_percentile, "batches": pwm.calibration_batches,
                                 "batch_size": batch_size, "seed": seed, "ranges": ranges})
    return ranges
