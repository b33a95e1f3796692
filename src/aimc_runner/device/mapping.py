"""Weight block <-> differential PCM conductance pairs (spec tile-model.md, section 1).

A layer block ``W`` of shape ``[in, out]`` (tile rows are inputs, columns are outputs) is stored as two
conductance arrays on the same columns, scaled per tile so that the largest weight uses the full range:

    s  = (g_max - g_min) / max|W|            µS per weight unit
    G+ = s·max(W, 0) + g_min                 µS
    G- = s·max(-W, 0) + g_min                µS
    W  = (G+ - G-) / s                       (read back)

``per_column=True`` (``tile.circuit.weight_scaling=column``, beyond the spec) gives every column its own
``s_j = (g_max - g_min) / max_i |W_ij|``, so each column's largest weight reaches ``g_max``; the digital periphery
divides output ``j`` by ``s_j``.

A block with fewer inputs than the tile has rows sits in the middle rows (``center``) or the first rows (``top``);
the remaining rows hold zero-conductance cells (0 µS for both devices): they carry no current but still lengthen
the column wire, which matters for IR-drop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MappedBlock", "map_block", "read_back"]

_PLACEMENTS = ("center", "top")


@dataclass(frozen=True)
class MappedBlock:
    """One weight block programmed on one tile.

    Attributes
    ----------
    g_pos, g_neg : np.ndarray
        float64 ``[rows, out]``, µS. Rows outside ``used`` are 0 µS (zero-conductance cells).
    scale : float or np.ndarray
        ``s`` in µS per weight unit (a float; float64 ``[out]`` per column with ``per_column``); the digital
        output is divided by it.
    row_offset : int
        First tile row holding the block.
    n_in : int
        Number of rows the block occupies (its input count).
    """

    g_pos: np.ndarray
    g_neg: np.ndarray
    scale: float | np.ndarray
    row_offset: int
    n_in: int

    @property
    def rows(self) -> int:
        """Physical rows of the tile."""
        return self.g_pos.shape[0]

    @property
    def used(self) -> slice:
        """The tile rows that hold the block (``g_pos[used]`` is ``[in, out]``)."""
        return slice(self.row_offset, self.row_offset + self.n_in)

    @property
    def g_net(self) -> np.ndarray:
        """Signed net conductance ``G+ - G-`` in µS, ``[rows, out]``."""
        return self.g_pos - self.g_neg


def _as_float64(w: Any) -> np.ndarray:
    # Accept torch tensors too (detached, on CPU) without importing torch here.
    if hasattr(w, "detach"):
        w = w.detach().cpu().numpy()
    return np.asarray(w, dtype=np.float64)


def map_block(
    w: Any,
    *,
    g_min_us: float,
    g_max_us: float,
    rows: int,
    placement: Any = "center",
    per_column: bool = False,
) -> MappedBlock:
    """Map a weight block onto a tile's differential conductance pairs.

    Parameters
    ----------
    w : array_like
        Weights ``[in, out]`` (numpy or torch), finite; ``in <= rows``.
    g_min_us, g_max_us : float
        Conductance range in µS, ``0 <= g_min < g_max``.
    rows : int
        Physical rows of the tile.
    placement : {"center", "top"} or ``config.Placement``
        ``center``: the block starts at row ``(rows - in) // 2``; ``top``: at row 0 (farthest from a south ADC).
    per_column : bool
        One scale per column (``s_j = (g_max - g_min)/max_i|W_ij|``) instead of one per tile.

    Returns
    -------
    MappedBlock
        ``G+ = s·max(W,0) + g_min`` and ``G- = s·max(-W,0) + g_min`` on the used rows, 0 µS elsewhere, with
        ``s = (g_max - g_min)/max|W|``. For an all-zero block (column, with ``per_column``) ``s = g_max - g_min``
        (as if ``max|W| = 1``): any finite scale reads back zeros, and this one keeps the digital rescaling free of
        division by zero.

    Raises
    ------
    ValueError
        Naming the argument: non-2-D or non-finite ``w``, ``in > rows``, a bad conductance range or placement.
    """
    w = _as_float64(w)
    if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] < 1:
        raise ValueError(f"`w` must be a non-empty 2-D array [in, out], got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("`w` must be finite (found NaN or inf)")
    if not (isinstance(rows, (int, np.integer)) and not isinstance(rows, bool) and rows > 0):
        raise ValueError(f"`rows` must be a positive integer, got {rows!r}")
    n_in = w.shape[0]
    if n_in > rows:
        raise ValueError(f"`w` has {n_in} inputs but the tile has only `rows` = {rows}; split the layer first")
    if not (math.isfinite(g_min_us) and g_min_us >= 0):
        raise ValueError(f"`g_min_us` must be finite and >= 0, got {g_min_us}")
    if not (math.isfinite(g_max_us) and g_max_us > g_min_us):
        raise ValueError(f"`g_max_us` must be finite and > g_min_us = {g_min_us}, got {g_max_us}")
    placement = getattr(placement, "value", placement)  # config.Placement or its string
    if placement not in _PLACEMENTS:
        raise ValueError(f"`placement` must be one of {_PLACEMENTS}, got {placement!r}")

    g_span = g_max_us - g_min_us
    if per_column:
        col_max = np.max(np.abs(w), axis=0)  # [out]
        scale = np.where(col_max > 0, g_span / np.where(col_max > 0, col_max, 1.0), g_span)
    else:
        w_abs_max = float(np.max(np.abs(w)))
        scale = float(g_span / w_abs_max) if w_abs_max > 0 else float(g_span)

    row_offset = (rows - n_in) // 2 if placement == "center" else 0
    used = slice(row_offset, row_offset + n_in)
    g_pos = np.zeros((rows, w.shape[1]), dtype=np.float64)
    g_neg = np.zeros_like(g_pos)
    g_pos[used] = scale * np.maximum(w, 0.0) + g_min_us
    g_neg[used] = scale * np.maximum(-w, 0.0) + g_min_us
    # The largest |W| maps to exactly g_max; guard the last ulp so later range checks never see g_max + eps.
    np.minimum(g_pos[used], g_max_us, out=g_pos[used])
    np.minimum(g_neg[used], g_max_us, out=g_neg[used])
    return MappedBlock(g_pos=g_pos, g_neg=g_neg, scale=scale, row_offset=row_offset, n_in=n_in)


def read_back(block: MappedBlock) -> np.ndarray:
    """Weights stored on a tile: ``W = (G+ - G-)/s`` over the used rows, float64 ``[in, out]``.

    Works on a block whose conductances were later perturbed (programming noise, drift), e.g. through
    ``dataclasses.replace(block, g_pos=..., g_neg=...)``.
    """
    return (block.g_pos[block.used] - block.g_neg[block.used]) / block.scale
