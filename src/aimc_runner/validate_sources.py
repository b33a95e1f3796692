"""What ``aimc-validate`` checks: conductances and pulse lengths from a worst-case pattern or a real model layer.

Every source gives a :class:`Case`: the two devices of each weight on the selected columns of one tile
(``g_pos``/``g_neg`` [rows, cols] µS, rows in tile order, row 0 farthest from a south ADC) and one input vector of
signed pulse lengths ([rows] slots, 0 on rows that hold no weight).

* ``all_on``: every cell's G+ at g_max (G- at g_min) and every row on for the whole window: the largest column
  current there is, hence the worst IR-drop;
* ``far_row``: the same conductances (the column fully loaded), only row 0 on: the longest current path for a
  column read at the south edge (with ``adc_sides=both`` odd columns see it as their nearest row);
* ``random``: G+ and G- drawn independently and uniformly in [g_min, g_max], pulse lengths uniform in
  [-n_max, n_max] (seeded): dense, signed, many distinct switching times;
* ``layer``: a named analog layer of a model, mapped as the tile maps it (its first row-block, its scale,
  ``placement``), driven by one token's input captured with a forward hook on real GLUE sentences and quantized
  with the tile's PWM (range: ``calibration_percentile`` of |x| over the captured tokens, or the token's abs-max
  for ``input_range=dynamic``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

import numpy as np

from .circuit import pwm
from .config import InputRange, ModelConfig, TaskConfig, TileConfig, WeightScaling


class Source(Enum):
    layer = "layer"
    all_on = "all_on"
    far_row = "far_row"
    random = "random"


class BadInput(ValueError):
    """A validation request that cannot be served (unknown layer, slice outside the layer, ...)."""


@dataclass
class Case:
    g_pos: np.ndarray  # µS [rows, cols], the selected columns
    g_neg: np.ndarray  # µS [rows, cols]
    durations: np.ndarray  # int64 [rows], signed slots
    n_in: int  # rows that hold weights: the full-scale charge counts these
    info: dict = field(default_factory=dict)  # what the case is, for the record
    g_tile: Optional[tuple] = None  # layer: (g_pos, g_neg) [rows, tile columns] µS, all columns of its first tile


def pattern(source: Source, rows: int, cols: int, tile: TileConfig, seed: int) -> Case:
    """A synthetic case on ``rows`` × ``cols`` cells (all rows hold weights)."""
    d, top = tile.device, pwm.n_max(tile.pwm.bits)
    if source == Source.random:
        rng = np.random.default_rng(seed)
        gp = rng.uniform(d.g_min_us, d.g_max_us, (rows, cols))
        gn = rng.uniform(d.g_min_us, d.g_max_us, (rows, cols))
        n = rng.integers(-top, top + 1, rows)
        return Case(gp, gn, n.astype(np.int64), rows, {"seed": seed})
    gp = np.full((rows, cols), d.g_max_us)
    gn = np.full((rows, cols), d.g_min_us)
    n = np.full(rows, top, dtype=np.int64)
    if source == Source.far_row:
        n[1:] = 0
    return Case(gp, gn, n, rows, {})


def row_probe(rows: int, row: int, tile: TileConfig) -> Case:
    """One column fully loaded (G+ = g_max on every row), only ``row`` driven for the whole window."""
    case = pattern(Source.all_on, rows, 1, tile, 0)
    case.durations[np.arange(rows) != row] = 0
    return case


def analog_layer_names(model: Any) -> list[str]:
    """Names of the model's linear layers that the spec puts on tiles (``analog.ANALOG_LAYERS``)."""
    from torch import nn

    from .analog import ANALOG_LAYERS

    pattern_ = ANALOG_LAYERS.get(getattr(model.config, "model_type", None))
    if pattern_ is None:
        raise BadInput(f"model type {model.config.model_type!r} has no analog layers; "
                       f"known: {', '.join(ANALOG_LAYERS)}")
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and re.search(pattern_, n)]


def find_layer(model: Any, name: str) -> str:
    """The full module name of ``name``: exact, or the unique analog layer ending in ``.name``."""
    names = analog_layer_names(model)
    hits = [n for n in names if n == name] or [n for n in names if n.endswith("." + name)]
    if len(hits) != 1:
        why = "is ambiguous" if hits else "is not an analog layer of this model"
        raise BadInput(f"invalid config value for `layer`: {name!r} {why}; available ({len(names)}):\n  "
                       + "\n  ".join(names))
    return hits[0]


def capture_inputs(model: Any, tokenizer: Any, layer: str, texts: list, max_length: int) -> np.ndarray:
    """The inputs of module ``layer`` on ``texts`` (real tokens only), float64 [tokens, in]."""
    import torch

    module = dict(model.named_modules())[layer]
    seen: list = []
    handle = module.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    enc = tokenizer(*texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    try:
        with torch.no_grad():
            model.eval()(**enc)
    finally:
        handle.remove()
    x = seen[0][enc["attention_mask"].bool()]  # [tokens, in]
    return x.double().cpu().numpy()


def layer_case(model_cfg: ModelConfig, task_cfg: TaskConfig, tile: TileConfig, *, layer: str, sentences: int,
               token: Optional[int], rows: int, cols: int, column_offset: int, seed: int) -> Case:
    """A real layer's first row-block on a ``rows``-row tile, driven by one captured token (see module doc)."""
    from . import models, tasks  # torch and transformers: only for this source
    from .device.mapping import map_block

    spec = tasks.TASKS[task_cfg.name.value]
    try:
        loaded = models.load(model_cfg, spec.num_labels, seed=seed)
        data = tasks.load(task_cfg, need_train=False)
    except (models.ModelNotAvailableError, tasks.DataNotFoundError) as err:
        raise BadInput(str(err)) from None
    name = find_layer(loaded.model, layer)
    weight = dict(loaded.model.named_modules())[name].weight.detach().double().numpy().T  # [in, out]

    block_out = min(weight.shape[1], tile.circuit.cols)
    if column_offset + cols > block_out:
        raise BadInput(f"invalid config value for `cols`: column_offset {column_offset} + cols {cols} exceeds the "
                       f"{block_out} outputs of the layer's first tile")
    n_in = min(weight.shape[0], rows)
    d = tile.device
    mapped = map_block(weight[:n_in, :block_out], g_min_us=d.g_min_us, g_max_us=d.g_max_us, rows=rows,
                       placement=tile.circuit.placement,
                       per_column=tile.circuit.weight_scaling == WeightScaling.column)

    split = data.eval[spec.eval_splits[0]]
    split = split.select(range(min(sentences, len(split))))
    texts = [list(split[c]) for c in ("text_a", "text_b") if c in split.column_names]
    x = capture_inputs(loaded.model, loaded.tokenizer, name, texts, model_cfg.max_seq_length)[:, :n_in]
    if tile.pwm.input_range == InputRange.dynamic:
        r_in = np.maximum(np.abs(x).max(axis=1, keepdims=True), 1e-12)  # [tokens, 1]
    else:
        r_in = np.full((x.shape[0], 1), float(np.percentile(np.abs(x), tile.pwm.calibration_percentile)))
    n_all = pwm.quantize(x, r_in, tile.pwm.bits)  # [tokens, n_in]
    if token is None:
        token = int(np.argmax(np.abs(n_all).sum(axis=1)))  # the heaviest load: the largest IR-drop
    elif not 0 <= token < len(n_all):
        raise BadInput(f"invalid config value for `token`: {token} is outside the {len(n_all)} captured tokens")
    n = np.zeros(rows, dtype=np.int64)
    n[mapped.used] = n_all[token]
    sel = slice(column_offset, column_offset + cols)
    info = {"model": model_cfg.name, "layer": name, "layer_shape": [weight.shape[1], weight.shape[0]],
            "task": spec.name, "split": spec.eval_splits[0], "sentences": len(split), "tokens": len(n_all),
            "token": token, "r_in": float(r_in[token, 0]), "inputs_on_tile": n_in, "row_offset": mapped.row_offset,
            "scale_us_per_unit": np.asarray(mapped.scale).tolist(), "data_source": data.source, "model_path": loaded.path}
    return Case(mapped.g_pos[:, sel].copy(), mapped.g_neg[:, sel].copy(), n, n_in, info, (mapped.g_pos, mapped.g_neg))
