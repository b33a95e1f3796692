"""Column ADC: integrated charge -> digital value (spec tile-model.md, section 4).

Applied to every column and every PWM window separately (split and bit-serial modes quantize each window before
the digital shift-and-add). Charges are in fC (µS·V·ns = fC). Every converter returns the *quantized charge* in
fC, i.e. ``counts · q_lsb``, not the integer counts, so that the digital rescaling downstream,

    y_j = Q̂_j · r_in / (s · dv · t_slot · (2^(b-1) - 1)),

is the same expression for every kind, ``none`` included. Functions take torch tensors (any float dtype and
device; returned in the same) or numpy arrays (returned as float64). They are not differentiable (zero gradient
almost everywhere): a training forward pass that keeps the ADC wraps them in a straight-through estimator,
``q + (adc(q) - q).detach()``.

Kinds
-----
- ``cco``: a current-controlled oscillator counts completed periods of the integrated charge, one period per
  ``q_lsb = i_ref / f_adc``, so ``count = trunc(Q / q_lsb)`` (toward zero, sign from the polarity), optionally
  saturated at ``±(2^(bits-1) - 1)``.
- ``uniform``: a symmetric mid-tread grid of ``2^(bits-1) - 1`` levels per side over ``±q_range``,
  round-to-nearest, clipped.
- ``none``: ideal, the charge itself.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import torch

__all__ = ["KINDS", "q_lsb_fc", "cco", "cco_counts_", "uniform", "none"]

KINDS = ("none", "cco", "uniform")


def _check_positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"`{name}` must be a real number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be finite and > 0, got {value}")
    return float(value)


def _check_bits(bits: Any) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 16:
        raise ValueError(f"`bits` must be an integer in [2, 16], got {bits!r}")
    return int(bits)


def _check_charge(q_fc: Any) -> Any:
    if isinstance(q_fc, torch.Tensor):
        if not q_fc.is_floating_point():
            raise ValueError(f"`q_fc` must be a floating-point tensor, got {q_fc.dtype}")
        if bool(torch.isnan(q_fc).any()):
            raise ValueError("`q_fc` contains NaN")
        return q_fc
    q_fc = np.asarray(q_fc, dtype=np.float64)
    if np.isnan(q_fc).any():
        raise ValueError("`q_fc` contains NaN")
    return q_fc


def q_lsb_fc(i_ref_ua: float = 100.0, f_adc_ghz: float = 6.24) -> float:
    """Charge of one CCO period, ``q_lsb = i_ref / f_adc`` in fC (µA / GHz = 1e-6 A · 1e-9 s = 1e-15 C).

    The defaults (100 µA, 6.24 GHz) give ≈ 16.026 fC.
    """
    return _check_positive(i_ref_ua, "i_ref_ua") / _check_positive(f_adc_ghz, "f_adc_ghz")


def cco(q_fc: Any, q_lsb_fc: float, bits: Optional[int] = None) -> Any:
    """Current-controlled-oscillator ADC.

    Parameters
    ----------
    q_fc : torch.Tensor or np.ndarray
        Integrated column charge in fC, any shape (e.g. ``[..., cols]`` for one window).
    q_lsb_fc : float
        Charge per oscillator period in fC (see :func:`q_lsb_fc`).
    bits : int or None
        Saturate at ``±(2^(bits-1) - 1)`` counts; None: an unbounded counter.

    Returns
    -------
    Same kind as ``q_fc``
        ``trunc(Q / q_lsb) · q_lsb`` (fC), with the count clipped when ``bits`` is given. An incomplete period is
        not counted, so the error is one-sided toward zero, in ``(-q_lsb, 0]`` for positive charge.
    """
    q_lsb = _check_positive(q_lsb_fc, "q_lsb_fc")
    q_fc = _check_charge(q_fc)
    if bits is not None:
        _check_bits(bits)
    if isinstance(q_fc, torch.Tensor):
        return cco_counts_(q_fc.clone(), q_lsb, bits).mul_(q_lsb)
    counts = np.trunc(q_fc / q_lsb)
    if bits is not None:
        c_max = float((1 << (bits - 1)) - 1)
        counts = np.clip(counts, -c_max, c_max)
    return counts * q_lsb


def cco_counts_(q_fc: torch.Tensor, q_lsb_fc: float, bits: Optional[int] = None) -> torch.Tensor:
    """:func:`cco`'s counts, ``clip(trunc(Q / q_lsb))``, computed in place on ``q_fc``, which is returned.

    Unchecked: for callers (the tile's MVM) whose arguments are valid by construction — a float tensor free of NaN
    they own, ``q_lsb_fc > 0``, ``bits`` in [2, 16] or None. Multiply by ``q_lsb_fc`` for the charge.
    """
    counts = q_fc.div_(q_lsb_fc)
    if bits is None:
        return counts.trunc_()
    c_max = float((1 << (bits - 1)) - 1)
    # Clamping to integer bounds commutes with truncation; once clamped, truncate by an exact int32 round trip
    # (|counts| <= 32767), several times faster than trunc_ on CPU.
    return counts.clamp_(-c_max, c_max).copy_(counts.to(torch.int32))


def uniform(q_fc: Any, bits: int, q_range_fc: Any) -> Any:
    """Uniform round-to-nearest ADC over a symmetric charge range.

    Parameters
    ----------
    q_fc : torch.Tensor or np.ndarray
        Integrated column charge in fC.
    bits : int
        Resolution in [2, 16], sign included: ``L = 2^(bits-1) - 1`` levels per side.
    q_range_fc : float or array
        Full-scale charge ``q_range`` in fC, > 0; a scalar, or broadcastable against ``q_fc`` (e.g. per column).
        The config's ``range_fs`` is in units of the full-scale charge: pass ``range_fs · q_full_scale``.

    Returns
    -------
    Same kind as ``q_fc``
        ``clip(round(Q / Δ), -L, L) · Δ`` with ``Δ = q_range / L`` (fC). Rounding is half-to-even.
    """
    levels = float((1 << (_check_bits(bits) - 1)) - 1)
    q_fc = _check_charge(q_fc)
    if isinstance(q_fc, torch.Tensor):
        q_range = torch.as_tensor(q_range_fc, dtype=q_fc.dtype, device=q_fc.device)
        if not bool(torch.all(torch.isfinite(q_range) & (q_range > 0))):
            raise ValueError("`q_range_fc` must be finite and > 0")
        step = q_range / levels
        return torch.clamp(torch.round(q_fc / step), -levels, levels) * step
    q_range = np.asarray(q_range_fc, dtype=np.float64)
    if not np.all(np.isfinite(q_range) & (q_range > 0)):
        raise ValueError("`q_range_fc` must be finite and > 0")
    step = q_range / levels
    return np.clip(np.round(q_fc / step), -levels, levels) * step


def none(q_fc: Any) -> Any:
    """Ideal converter: the charge unchanged (fC)."""
    return _check_charge(q_fc)
