"""Long-term PCM statistics: programming noise, drift, accumulated 1/f noise, drift compensation (spec section 6).

The widely used PCM statistical model, fitted on a million-device doped-GST array: Nandakumar et al., ICECS 2019
("Phase-change memory models for deep learning training and inference"), and Joshi et al., Nat. Commun. 11, 2473
(2020) ("Accurate deep neural network inference using computational phase-change memory"); the same equations as
IBM aihwkit's ``PCMLikeNoiseModel``. The fits are in normalized conductance ``g = G / g_max`` with the reference
``g_max = 25 µS``:

- programming, once per programming:  ``σ_prog = (0.26348 + 1.9650·g - 1.1731·g²)·g_max/25`` µS,
  ``G_prog = max(0, G_target + σ_prog·ξ)``;
- drift exponent, per device:  ``μ_ν = clip(-0.0155·ln g + 0.0244, 0.049, 0.1)``,
  ``σ_ν = clip(-0.0125·ln g - 0.0059, 0.008, 0.045)``, ``ν = |μ_ν + σ_ν·ξ|``;
- drift:  ``G(t) = G_prog·((t + t0)/t0)^(-ν)``, ``t0 = 20 s``, t counted from the end of programming;
- accumulated 1/f read noise at evaluation time t, drawn once and frozen for that evaluation:
  ``Q_s = min(0.0088 / max(g_prog, 1e-3)^0.65, 0.2)``,
  ``σ = G(t)·Q_s·sqrt(ln((t + t0 + t_read)/(2·t_read)))``, ``t_read = 250 ns``.

Apply these to the cells that hold the block (``MappedBlock.used`` rows): the unused rows are zero-conductance
cells by construction, and programming noise must not make them conduct. All functions are numpy with an explicit
``np.random.Generator`` (one per noise timescale); conductances are float64 µS.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "programming_noise_std_us",
    "programming_noise",
    "drift_exponent_stats",
    "drift_exponents",
    "drifted",
    "one_over_f_std_us",
    "one_over_f_noise",
    "drift_compensation_gain",
]

_PROG_COEFFS_US = (0.26348, 1.9650, -1.1731)  # constant, g, g^2; µS at the reference g_max
_PROG_G_MAX_REF_US = 25.0
_G_FLOOR = 1e-7  # keeps ln g finite at g = 0; the clipped μ_ν, σ_ν already saturate below g ≈ 0.04


def _conductance(g_us: Any, name: str) -> np.ndarray:
    g = np.asarray(g_us, dtype=np.float64)
    if not np.all(np.isfinite(g) & (g >= 0)):
        raise ValueError(f"`{name}` must be finite and >= 0 (µS)")
    return g


def _positive(value: float, name: str) -> float:
    if not (isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be finite and > 0, got {value!r}")
    return float(value)


def _non_negative(value: float, name: str) -> float:
    if not (isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"`{name}` must be finite and >= 0, got {value!r}")
    return float(value)


def _rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError("`rng` must be a np.random.Generator (explicit, seeded)")
    return rng


def programming_noise_std_us(g_target_us: Any, g_max_us: float) -> np.ndarray:
    """``σ_prog`` in µS: ``(0.26348 + 1.9650·g - 1.1731·g²)·g_max/25`` with ``g = G_target/g_max``.

    Clamped at 0 for targets far above ``g_max`` where the quadratic would turn negative (g > 1.8).
    """
    g_max = _positive(g_max_us, "g_max_us")
    g = _conductance(g_target_us, "g_target_us") / g_max
    c0, c1, c2 = _PROG_COEFFS_US
    return np.maximum(c0 + c1 * g + c2 * g * g, 0.0) * (g_max / _PROG_G_MAX_REF_US)


def programming_noise(g_target_us: Any, g_max_us: float, rng: np.random.Generator) -> np.ndarray:
    """Programmed conductance ``G_prog = max(0, G_target + σ_prog·ξ)`` in µS (one draw per device)."""
    sigma = programming_noise_std_us(g_target_us, g_max_us)
    g = np.asarray(g_target_us, dtype=np.float64)
    return np.maximum(g + sigma * _rng(rng).standard_normal(g.shape), 0.0)


def drift_exponent_stats(g_prog_us: Any, g_max_us: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread of the drift exponent, ``(μ_ν, σ_ν)``, from the conductance at programming.

    ``μ_ν = clip(-0.0155·ln g + 0.0244, 0.049, 0.1)``, ``σ_ν = clip(-0.0125·ln g - 0.0059, 0.008, 0.045)``,
    ``g = max(G/g_max, 1e-7)``. (aihwkit evaluates them at the target conductance; pass that if preferred.)
    """
    g_max = _positive(g_max_us, "g_max_us")
    ln_g = np.log(np.maximum(_conductance(g_prog_us, "g_prog_us") / g_max, _G_FLOOR))
    mu = np.clip(-0.0155 * ln_g + 0.0244, 0.049, 0.1)
    sigma = np.clip(-0.0125 * ln_g - 0.0059, 0.008, 0.045)
    return mu, sigma


def drift_exponents(g_prog_us: Any, g_max_us: float, rng: np.random.Generator) -> np.ndarray:
    """Drift exponent per device, ``ν = |μ_ν + σ_ν·ξ|`` (dimensionless, >= 0), drawn once at programming."""
    mu, sigma = drift_exponent_stats(g_prog_us, g_max_us)
    return np.abs(mu + sigma * _rng(rng).standard_normal(mu.shape))


def drifted(g_prog_us: Any, nu: Any, t_s: float, t0_s: float = 20.0) -> np.ndarray:
    """Conductance after drift, ``G(t) = G_prog·((t + t0)/t0)^(-ν)`` in µS.

    ``t_s`` >= 0 is the time since programming in seconds (``G(0) = G_prog``); ``nu`` broadcasts against
    ``g_prog_us``.
    """
    g = _conductance(g_prog_us, "g_prog_us")
    nu = np.asarray(nu, dtype=np.float64)
    if not np.all(np.isfinite(nu) & (nu >= 0)):
        raise ValueError("`nu` must be finite and >= 0")
    ratio = (_non_negative(t_s, "t_s") + _positive(t0_s, "t0_s")) / t0_s
    return g * ratio ** (-nu)


def one_over_f_std_us(
    g_prog_us: Any, g_t_us: Any, g_max_us: float, t_s: float, t0_s: float = 20.0, t_read_ns: float = 250.0
) -> np.ndarray:
    """Accumulated 1/f noise std ``σ = G(t)·Q_s·sqrt(ln((t + t0 + t_read)/(2·t_read)))`` in µS.

    ``Q_s = min(0.0088/max(g_prog, 1e-3)^0.65, 0.2)`` with ``g_prog = G_prog/g_max``.

    ``t_s``, ``t0_s`` in seconds; ``t_read_ns`` in ns (converted to s here: the ratio must be unit-consistent).
    """
    g_max = _positive(g_max_us, "g_max_us")
    g_prog = _conductance(g_prog_us, "g_prog_us") / g_max
    g_t = _conductance(g_t_us, "g_t_us")
    t_read_s = _positive(t_read_ns, "t_read_ns") * 1e-9
    t_total = _non_negative(t_s, "t_s") + _positive(t0_s, "t0_s")
    q_s = np.minimum(0.0088 / np.maximum(g_prog, 1e-3) ** 0.65, 0.2)
    # ln(...) >= 0 whenever t0 >= t_read (always, for seconds vs ns); clamp so an odd t0 cannot produce NaN.
    log_term = max(math.log((t_total + t_read_s) / (2.0 * t_read_s)), 0.0)
    return g_t * q_s * math.sqrt(log_term)


def one_over_f_noise(
    g_prog_us: Any,
    g_t_us: Any,
    g_max_us: float,
    t_s: float,
    rng: np.random.Generator,
    t0_s: float = 20.0,
    t_read_ns: float = 250.0,
    scale: float = 1.0,
) -> np.ndarray:
    """Conductance at evaluation time with accumulated 1/f noise, ``max(0, G(t) + scale·σ·ξ)`` in µS.

    Drawn once per evaluation (per chip seed) and frozen for it, unlike the per-MVM ns read noise
    (:mod:`aimc_runner.device.read_noise`). ``g_prog_us`` sets ``Q_s``; ``g_t_us`` is the drifted conductance
    (:func:`drifted`). Returns the noisy conductance, not the noise: the clip at 0 needs both.
    """
    sigma = one_over_f_std_us(g_prog_us, g_t_us, g_max_us, t_s, t0_s, t_read_ns)
    g_t = np.asarray(g_t_us, dtype=np.float64)
    xi = _rng(rng).standard_normal(np.broadcast_shapes(sigma.shape, g_t.shape))
    return np.maximum(g_t + _non_negative(scale, "scale") * sigma * xi, 0.0)


def _mean_abs(response: Any) -> float:
    if hasattr(response, "detach"):  # torch tensor, without importing torch here
        return float(response.detach().abs().double().mean().item())
    r = np.asarray(response, dtype=np.float64)
    if r.size == 0:
        raise ValueError("empty probe response")
    return float(np.mean(np.abs(r)))


def drift_compensation_gain(response_at_programming: Any, response_at_t: Any) -> float:
    """One global digital gain per tile, ``α = mean|r(t_prog)| / mean|r(t)|``; outputs at t are multiplied by α.

    Probe: the tile should use the identity (one-hot inputs, one per used row, at full-scale pulse length
    ``n = 2^(b-1) - 1``), as aihwkit's ``GlobalDriftCompensation`` does. With the effective-matrix path the
    responses are then the rows of ``τ ⊙ (G+ - G-)`` (no extra MVMs), every device enters with equal weight, and
    no sign cancellation between inputs can shrink the readout. Both responses must go through the same
    converters (ADC, noise) so that only the device state differs between them. Both arguments are arrays of any
    (matching) shape, numpy or torch.

    Raises
    ------
    ValueError
        If the response at t is all zero while the baseline is not (nothing to rescale). An all-zero tile (both
        zero) gets ``α = 1``.
    """
    r0 = _mean_abs(response_at_programming)
    rt = _mean_abs(response_at_t)
    if not (math.isfinite(r0) and math.isfinite(rt)):
        raise ValueError("probe responses must be finite")
    if rt == 0.0:
        if r0 == 0.0:
            return 1.0
        raise ValueError("`response_at_t` is all zero but `response_at_programming` is not: cannot compensate")
    return r0 / rt
