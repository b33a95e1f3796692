"""Signed pulse-width-modulated (PWM) input encoding (spec tile-model.md, section 2).

Each input is scaled by its layer's input range ``r_in``, clipped to ±1 and quantized to a signed integer

    n = round(clip(x / r_in, -1, 1) · (2^(b-1) - 1)),        |n| <= 2^(b-1) - 1   (127 for b = 8)

Row i is then driven for ``|n_i|`` slots of ``t_slot`` with polarity ``sign(n_i)``. A long pulse can be cut into
several integration windows, each read out by the ADC and recombined digitally as ``Σ_w weight_w · out_w``:

- ``one_pass``: one window of ``2^(b-1) - 1`` slots, ``[(n, 1)]``.
- ``split``: the low ``L`` bits of ``|n|`` (sign kept) in a window of ``2^L - 1`` slots with weight 1, the remaining
  high bits in a window of ``(2^(b-1) - 1) >> L`` slots with weight ``2^L``.
- ``bit_serial``: one single-slot window per bit ``k`` of ``|n|`` (durations 0 or ±1), weight ``2^k``.

In every mode ``Σ_w weight_w · durations_w == n`` exactly. Functions take torch tensors (what the model produces,
any float dtype and device) or numpy arrays, and return the same kind.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["MODES", "n_max", "quantize", "dequantize", "windows", "window_slots"]

MODES = ("one_pass", "split", "bit_serial")


def _check_bits(bits: Any) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 16:
        raise ValueError(f"`bits` must be an integer in [2, 16], got {bits!r}")
    return int(bits)


def _check_mode(mode: Any, bits: int, split_low_bits: Any) -> str:
    mode = getattr(mode, "value", mode)  # config.PwmMode or its string
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}, got {mode!r}")
    if mode == "split" and (
        isinstance(split_low_bits, bool)
        or not isinstance(split_low_bits, (int, np.integer))
        or not 0 < split_low_bits < bits - 1
    ):
        raise ValueError(
            f"`split_low_bits` must be an integer in [1, bits-2] = [1, {bits - 2}], got {split_low_bits!r}"
        )
    return mode


def n_max(bits: int) -> int:
    """Largest pulse length in slots, ``2^(b-1) - 1``."""
    return (1 << (_check_bits(bits) - 1)) - 1


def _check_r_in(r_in: Any) -> None:
    if isinstance(r_in, torch.Tensor):
        ok = bool(torch.all(torch.isfinite(r_in) & (r_in > 0)))
    else:
        r = np.asarray(r_in, dtype=np.float64)
        ok = bool(np.all(np.isfinite(r) & (r > 0)))
    if not ok:
        # A dynamic (per-token abs-max) range of an all-zero token is 0: clamp it to a tiny positive value upstream.
        raise ValueError("`r_in` must be finite and > 0 everywhere")


def quantize(x: Any, r_in: Any, bits: int) -> Any:
    """Quantize inputs to signed pulse lengths.

    Parameters
    ----------
    x : torch.Tensor or np.ndarray
        Inputs ``[..., in]`` in the layer's units; NaN is refused, ±inf clips to ±full scale.
    r_in : float, torch.Tensor or np.ndarray
        Input range, broadcastable against ``x``: a scalar, a per-layer value, or per-token ``[..., 1]``.
    bits : int
        Input resolution ``b`` in [2, 16], sign included.

    Returns
    -------
    torch.Tensor or np.ndarray
        int64 ``n = round(clip(x/r_in, -1, 1)·(2^(b-1) - 1))``, same shape and kind (and torch device) as ``x``.
        Rounding is half-to-even (torch and numpy agree); ties are measure-zero for real activations.
    """
    bits = _check_bits(bits)
    _check_r_in(r_in)
    full = float(n_max(bits))
    if isinstance(x, torch.Tensor):
        if bool(torch.isnan(x).any()):
            raise ValueError("`x` contains NaN")
        r = torch.as_tensor(r_in, dtype=x.dtype, device=x.device)
        # Divide before clipping in x's dtype; clip first so the product never exceeds full scale.
        return torch.round(torch.clamp(x / r, -1.0, 1.0) * full).to(torch.int64)
    x = np.asarray(x, dtype=np.float64)
    if np.isnan(x).any():
        raise ValueError("`x` contains NaN")
    return np.round(np.clip(x / np.asarray(r_in, dtype=np.float64), -1.0, 1.0) * full).astype(np.int64)


def dequantize(n: Any, r_in: Any, bits: int) -> Any:
    """Inverse of :func:`quantize`: ``x̂ = n · r_in / (2^(b-1) - 1)``.

    Float result: for torch, ``r_in``'s dtype when it is a float tensor, else torch's default dtype.
    """
    bits = _check_bits(bits)
    _check_r_in(r_in)
    full = float(n_max(bits))
    if isinstance(n, torch.Tensor):
        is_float_r = isinstance(r_in, torch.Tensor) and r_in.is_floating_point()
        dtype = r_in.dtype if is_float_r else torch.get_default_dtype()
        return n.to(dtype) * (torch.as_tensor(r_in, dtype=dtype, device=n.device) / full)
    return np.asarray(n, dtype=np.float64) * (np.asarray(r_in, dtype=np.float64) / full)


def window_slots(bits: int, mode: Any, split_low_bits: int = 3) -> list[int]:
    """Length in slots of each integration window, in the order :func:`windows` returns them.

    ``one_pass``: ``[2^(b-1) - 1]``; ``split``: ``[2^L - 1, (2^(b-1) - 1) >> L]``; ``bit_serial``: ``[1]*(b-1)``.
    """
    bits = _check_bits(bits)
    mode = _check_mode(mode, bits, split_low_bits)
    if mode == "one_pass":
        return [n_max(bits)]
    if mode == "split":
        return [(1 << split_low_bits) - 1, n_max(bits) >> split_low_bits]
    return [1] * (bits - 1)


def windows(n: Any, bits: int, mode: Any, split_low_bits: int = 3) -> list[tuple[Any, int]]:
    """Decompose signed pulse lengths into PWM windows.

    Parameters
    ----------
    n : torch.Tensor or np.ndarray
        Signed integers with ``|n| <= 2^(b-1) - 1``, e.g. from :func:`quantize`.
    bits : int
        Input resolution ``b``.
    mode : {"one_pass", "split", "bit_serial"} or ``config.PwmMode``
    split_low_bits : int
        ``L`` for ``split``, in [1, b-2].

    Returns
    -------
    list of (durations, weight)
        ``durations`` int64 like ``n`` (slots, signed), ``weight`` a Python int; ``Σ weight·durations == n``.
        Each window's durations fit in the matching :func:`window_slots` entry.
    """
    bits = _check_bits(bits)
    mode = _check_mode(mode, bits, split_low_bits)
    is_torch = isinstance(n, torch.Tensor)
    if is_torch:
        if n.is_floating_point() or n.is_complex():
            if not bool(torch.all(n == torch.round(n))):
                raise ValueError("`n` must hold integers")
        n = n.to(torch.int64)
        mag, sign = n.abs(), torch.sign(n)
        too_big = bool((mag > n_max(bits)).any())
    else:
        n_arr = np.asarray(n)
        if not np.all(n_arr == np.round(n_arr)):
            raise ValueError("`n` must hold integers")
        n = n_arr.astype(np.int64)
        mag, sign = np.abs(n), np.sign(n)
        too_big = bool((mag > n_max(bits)).any())
    if too_big:
        raise ValueError(f"`n` exceeds the {bits}-bit pulse range ±{n_max(bits)}")

    if mode == "one_pass":
        return [(n, 1)]
    if mode == "split":
        low_mask = (1 << split_low_bits) - 1
        # Sign applies to both halves, so each window drives every row with one polarity.
        return [(sign * (mag & low_mask), 1), (sign * (mag >> split_low_bits), 1 << split_low_bits)]
    return [(sign * ((mag >> k) & 1), 1 << k) for k in range(bits - 1)]
