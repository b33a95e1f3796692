"""PCM read noise at nanosecond timescales (spec tile-model.md, section 5).

Statistical model of the published time-dependent IR-drop tile (arXiv:2506.00004, "Rapid yet accurate
Tile-circuit and device modeling for Analog In-Memory Computing"): the read noise of a weight with net conductance
``G = |G+ - G-|`` (µS), read during an MVM whose mean pulse length is ``t̄`` (ns), is Gaussian with

    σ_G = a(u)·G + b(u),        u = log10(t̄),

with fourth-order polynomials ``a`` (fraction of G) and ``b`` (fitted in siemens, converted here to µS). Shorter
reads integrate less and are noisier: ``a(0) ≈ 2.58 %``, ``b(0) ≈ 0.118 µS`` at 1 ns; ``a ≈ 1.09 %``,
``b ≈ 0.0485 µS`` at 127 ns. Below 1 ns (sparse inputs make ``t̄ = mean_i |n_i|·t_slot`` small) the polynomials
are extrapolated as given; they keep rising monotonically (16 % + 0.77 µS at 1/512 ns). ``t̄ = 0`` means no row
is driven: no current flows, and the noise is exactly zero.

The noise is drawn independently per weight and per MVM (token), ``G_noisy = G + scale·σ_G·ξ``. A column's output
is linear in the weights, so its extra noise is exactly Gaussian; for token k and column j

    Var_kj = Σ_i (c_ik·τ_ij)²·σ_ijk²,     c_ik = dv·t_slot·n_ik (V·ns),   σ_ijk = a_k·G_ij + b_k,

and expanding ``σ² = a²G² + 2abG + b²`` gives three GEMMs, ``(c²) @ (τ²G²)``, ``(c²) @ (τ²G)``,
``(c²) @ τ²``, combined with per-token ``a_k, b_k``: sampling one Gaussian per output is exact and costs no noise
matrix per token. Output noise is in the units of ``c·G``: V·ns·µS = fC, the column charge.

Those products are three times the MVM's own GEMM. With bfloat16 moments (``tile.device.read_noise_precision``)
they run on bfloat16 operands: ``c²`` and the moments are each rounded to 8 significant bits (relative error
≤ 2⁻⁹), the products are accumulated in float32 and rounded once more to bfloat16. Every term of the variance is
non-negative, so its relative error is at most (1 + 2⁻⁹)³ - 1 ≈ 0.59 % and the std's at most ≈ 0.3 % — far inside
the read-noise fit's own uncertainty — for about half the time on CPUs with bfloat16 instructions (AVX512-BF16,
AMX) and on GPUs; elsewhere it can be slower than float32.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

__all__ = [
    "A_COEFFS",
    "B_COEFFS_S",
    "read_noise_coefficients",
    "sigma_g_us",
    "noise_moments",
    "column_noise_std",
    "sample_column_noise",
    "sample_weight_noise_reference",
]

# arXiv:2506.00004 (IBM), PCM read-noise fit, highest power of u = log10(t̄ / ns) first.
A_COEFFS = (2.1926e-4, -1.87352e-3, 6.55714e-3, -1.46159e-2, 2.578764e-2)  # fraction of G
B_COEFFS_S = (1.11906167e-9, -9.08576764e-9, 3.07015063e-8, -6.77079241e-8, 1.17763144e-7)  # siemens
_S_TO_US = 1e6


def _horner(coeffs: tuple[float, ...], u: Any) -> Any:
    out = coeffs[0] * u + coeffs[1]
    for c in coeffs[2:]:
        out = out * u + c
    return out


def read_noise_coefficients(t_mean_ns: Any) -> tuple[Any, Any]:
    """Slope ``a`` (fraction of G) and offset ``b`` (µS) of the read noise for mean pulse lengths ``t̄``.

    Parameters
    ----------
    t_mean_ns : float, np.ndarray or torch.Tensor
        Mean pulse length in ns, finite and >= 0, any shape (one value per token).

    Returns
    -------
    (a, b_us)
        Same shape and kind as ``t_mean_ns`` (float64 for non-tensors); both exactly 0 where ``t̄ = 0``.
    """
    if isinstance(t_mean_ns, torch.Tensor):
        t = t_mean_ns if t_mean_ns.is_floating_point() else t_mean_ns.to(torch.get_default_dtype())
        if not bool(torch.all(torch.isfinite(t) & (t >= 0))):
            raise ValueError("`t_mean_ns` must be finite and >= 0")
        on = t > 0
        # log10 of a placeholder 1 ns where t = 0, so no -inf reaches the polynomial (or its gradient).
        u = torch.log10(torch.where(on, t, torch.ones_like(t)))
        zero = torch.zeros_like(t)
        return torch.where(on, _horner(A_COEFFS, u), zero), torch.where(on, _horner(B_COEFFS_S, u) * _S_TO_US, zero)
    t = np.asarray(t_mean_ns, dtype=np.float64)
    if not np.all(np.isfinite(t) & (t >= 0)):
        raise ValueError("`t_mean_ns` must be finite and >= 0")
    on = t > 0
    u = np.log10(np.where(on, t, 1.0))
    return np.where(on, _horner(A_COEFFS, u), 0.0), np.where(on, _horner(B_COEFFS_S, u) * _S_TO_US, 0.0)


def sigma_g_us(g_us: Any, t_mean_ns: Any) -> Any:
    """Read-noise standard deviation ``σ_G = a(u)·|G| + b(u)`` in µS (0 where ``t̄ = 0``).

    ``g_us`` and ``t_mean_ns`` broadcast against each other (numpy or torch, not mixed).
    """
    a, b = read_noise_coefficients(t_mean_ns)
    g = g_us.abs() if isinstance(g_us, torch.Tensor) else np.abs(np.asarray(g_us, dtype=np.float64))
    return a * g + b


def noise_moments(tau: Optional[torch.Tensor], g_net: torch.Tensor, dtype: Optional[torch.dtype] = None
                  ) -> torch.Tensor:
    """The three weight-side GEMM operands ``[τ²G² | τ²G | τ²]``, concatenated to ``[rows, 3·cols]``.

    Depends only on the tile state (recompute when τ or the conductances change). ``g_net`` may be signed; its
    absolute value is used. ``tau=None`` means no IR-drop (τ = 1). ``dtype``: the returned dtype (default
    ``g_net``'s); ``torch.bfloat16`` selects the reduced-precision variance GEMM of :func:`column_noise_std`.
    """
    g = g_net.abs()
    tau2 = torch.ones_like(g) if tau is None else tau.to(g.dtype) ** 2
    m = torch.cat([tau2 * g * g, tau2 * g, tau2], dim=-1)
    return m if dtype is None else m.to(dtype)


def column_noise_std(
    c: torch.Tensor,
    tau: Optional[torch.Tensor],
    g_net: torch.Tensor,
    t_mean_ns: Any,
    *,
    moments: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Exact standard deviation of each column's read-noise charge, per token.

    Parameters
    ----------
    c : torch.Tensor
        Per-row drive ``c_ik = dv·t_slot·n_ik`` in V·ns, ``[..., rows]`` (one row of ``...`` per token).
    tau : torch.Tensor or None
        Current-division factors ``[rows, cols]`` (None: no IR-drop).
    g_net : torch.Tensor
        Net conductance ``G+ - G-`` in µS, ``[rows, cols]`` (sign ignored).
    t_mean_ns : float or torch.Tensor
        Each token's mean pulse length in ns, scalar or ``[...]`` (``c``'s leading shape).
    moments : torch.Tensor, optional
        Precomputed :func:`noise_moments` ``(tau, g_net)``, to skip rebuilding it per call. bfloat16 moments run
        the variance GEMM on bfloat16 operands (std within 0.3 %, see the module docstring); any other dtype is
        converted to ``c``'s.

    Returns
    -------
    torch.Tensor
        ``sqrt(a²·(c²)@(τ²G²) + 2ab·(c²)@(τ²G) + b²·(c²)@(τ²))`` in fC, ``[..., cols]``, ``c``'s dtype.
    """
    if not c.is_floating_point():
        raise ValueError(f"`c` must be a floating-point tensor (dv·t_slot·n in V·ns), got {c.dtype}")
    if moments is None:
        moments = noise_moments(tau, g_net)
    reduced = moments.dtype == torch.bfloat16
    moments = moments.to(device=c.device, dtype=torch.bfloat16 if reduced else c.dtype)
    cols = moments.shape[-1] // 3
    if c.shape[-1] != moments.shape[0]:
        raise ValueError(f"`c` has {c.shape[-1]} rows but `g_net` has {moments.shape[0]}")
    t = torch.as_tensor(t_mean_ns, device=c.device, dtype=c.dtype)
    if t.dim() > 0 and t.shape != c.shape[:-1]:
        raise ValueError(f"`t_mean_ns` must be a scalar or of shape {tuple(c.shape[:-1])}, got {tuple(t.shape)}")
    a, b = read_noise_coefficients(t)
    a, b = a.unsqueeze(-1), b.unsqueeze(-1)  # [..., 1]: one a_k, b_k per token
    c2 = c * c
    m = (c2.to(torch.bfloat16) @ moments).to(c.dtype) if reduced else c2 @ moments  # [..., 3·cols]
    # var = a²·m1 + 2ab·m2 + b²·m3, in place on one [..., cols] buffer (the hot path of every noisy MVM).
    var = m[..., :cols] * (a * a)
    var.addcmul_(m[..., cols : 2 * cols], 2 * a * b).addcmul_(m[..., 2 * cols :], b * b)
    # Each term is a sum of squares; clamp only float round-off before the sqrt.
    return var.clamp_(min=0.0).sqrt_()


def sample_column_noise(
    c: torch.Tensor,
    tau: Optional[torch.Tensor],
    g_net: torch.Tensor,
    t_mean_ns: Any,
    generator: torch.Generator,
    scale: float = 1.0,
    *,
    moments: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Draw the read-noise charge of every column for every token, ``[..., cols]`` in fC.

    ``scale·std·ξ`` with ``std`` from :func:`column_noise_std` and ``ξ ~ N(0, 1)`` from ``generator`` (which must
    live on ``c``'s device). Same generator state → identical draws.
    """
    if not (isinstance(scale, (int, float)) and np.isfinite(scale) and scale >= 0):
        raise ValueError(f"`scale` must be finite and >= 0, got {scale!r}")
    if not isinstance(generator, torch.Generator):
        raise ValueError("`generator` must be a torch.Generator (explicit, seeded)")
    std = column_noise_std(c, tau, g_net, t_mean_ns, moments=moments)
    xi = torch.randn(std.shape, generator=generator, device=std.device, dtype=std.dtype)
    noise = std.mul_(xi)
    return noise if scale == 1.0 else noise.mul_(scale)


def sample_weight_noise_reference(
    c: np.ndarray,
    tau: Optional[np.ndarray],
    g_net: np.ndarray,
    t_mean_ns: Any,
    rng: np.random.Generator,
    scale: float = 1.0,
) -> np.ndarray:
    """Slow oracle: draw a full noisy weight matrix per token and return the column noise charge.

    For each token k: ``G_noisy = sgn(G)·(|G| + scale·σ_k·ξ_k)`` with ``ξ_k`` ``[rows, cols]`` fresh, sign kept
    (``sgn(0) = +1``, so a zero weight still gets the additive ``b`` term, as in the variance formula), then
    ``noise_kj = Σ_i c_ik·τ_ij·(G_noisy - G)_ij``. ``c`` is ``[tokens, rows]``, ``t_mean_ns`` scalar or
    ``[tokens]``; returns float64 ``[tokens, cols]`` in fC. Holds ``tokens·rows·cols`` draws at once: tests only.
    """
    c = np.asarray(c, dtype=np.float64)
    g = np.asarray(g_net, dtype=np.float64)
    tau = np.ones_like(g) if tau is None else np.asarray(tau, dtype=np.float64)
    t = np.broadcast_to(np.asarray(t_mean_ns, dtype=np.float64), c.shape[:1])
    sgn = np.where(g < 0, -1.0, 1.0)
    sigma = sigma_g_us(g[None], t[:, None, None])  # [tokens, rows, cols]
    xi = rng.standard_normal(sigma.shape)
    g_noisy = sgn * (np.abs(g) + scale * sigma * xi)
    return np.einsum("ki,ij,kij->kj", c, tau, g_noisy - g)
