"""A weight matrix programmed onto analog tiles, and its matrix-vector products.

``AnalogTileArray(weight, cfg, rngs)`` cuts ``W`` (out × in) into blocks of at most ``rows`` inputs × ``cols``
outputs, one tile each (spec 1), maps each block to differential conductance pairs, applies the long-term device
model (programming noise, drift, 1/f: spec 6) once, and precomputes the tile's effective conductance matrix
``τ ⊙ (G+ - G-)`` (spec 3.1). ``tile(x, r_in, generator)`` then runs the MVM on any batch ``[..., in]``:

1. PWM (spec 2): ``n = round(clip(x / r_in, ±1) · (2^(b-1) - 1))``, split into windows (one_pass / split /
   bit_serial);
2. per window, the charge each column's ADC receives, ``Q = dv · t_slot · n @ (τ ⊙ (G+ - G-))`` in fC — one GEMM
   (``method=effective``), or the slot-by-slot solve (``method=time_stepped``, also exact for floating idle rows);
3. ns read noise (spec 5), sampled exactly per column: ``N(0, Σ_i (dv·t_slot·τ_ij·n_i)² σ_ij²)``;
4. the ADC per column and window (spec 4), then the digital weighted sum of windows;
5. back to weight units, ``y = Q̂ · r_in / (s · dv · t_slot · (2^(b-1) - 1))`` (``s`` per tile, or per column with
   ``circuit.weight_scaling=column``), times the drift-compensation gain, and digital accumulation of the partial
   sums of row-blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from .circuit import adc as adc_mod
from .circuit import pwm
from .circuit.crossbar import column_charge_2d, effective_conductance_2d
from .circuit.ladder import transfer_factors
from .config import AdcKind, IrDropMethod, NoisePrecision, PwmMode, TileConfig, WeightScaling
from .device import pcm
from .device.mapping import MappedBlock, map_block
from .device.read_noise import noise_moments, sample_column_noise


@dataclass
class ChipRngs:
    """One generator per slow noise timescale of one chip (the per-MVM read noise gets a torch generator)."""

    programming: np.random.Generator
    drift: np.random.Generator

    @classmethod
    def from_seed(cls, seed: int) -> "ChipRngs":
        prog, drift = np.random.SeedSequence(seed).spawn(2)
        return cls(np.random.default_rng(prog), np.random.default_rng(drift))


@dataclass
class _Block:
    inputs: slice  # rows of W^T (layer inputs) this tile holds
    outputs: slice  # columns (layer outputs)
    mapped: MappedBlock  # target (noise-free) mapping: scale and placement
    g_pos: np.ndarray  # µS [rows, n_out] at evaluation time (after programming noise, drift, 1/f)
    g_neg: np.ndarray
    tau: np.ndarray  # [n_in, n_out] transfer factors on the used rows (1 without IR-drop)
    w_eff: torch.Tensor  # µS [n_in, n_out] on the used rows: τ ⊙ (G+ - G-), or the 2-D solve with row wires
    moments: Optional[torch.Tensor]  # [n_in, 3·n_out] read-noise GEMM operands
    unit: float | torch.Tensor  # gain / s: weight units per µS (drift-compensation gain over the scale), a float
    # (per-tile scale) or [n_out] (per column)


def block_slices(n: int, size: int) -> list[slice]:
    """Consecutive slices of at most ``size`` covering ``range(n)``: how a layer is cut into tiles (spec 1)."""
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def check_supported(cfg: TileConfig) -> None:
    """Refuse tile configurations this model cannot simulate exactly (see ``TileConfig.check_supported``)."""
    cfg.check_supported()


class AnalogTileArray:
    """``W`` (out × in) programmed on ``ceil(in/rows) × ceil(out/cols)`` tiles.

    Parameters
    ----------
    weight : torch.Tensor or np.ndarray
        ``[out, in]`` in weight units (an ``nn.Linear`` weight).
    cfg : TileConfig
        Device, circuit, ADC and PWM settings.
    rngs : ChipRngs
        Generators for programming noise and drift/1/f draws (one chip). Unused when those effects are off.
    dtype, device : torch dtype and device of the MVM (float32 for models; float64 to compare with the oracle).
    """

    def __init__(self, weight, cfg: TileConfig, rngs: Optional[ChipRngs] = None, *,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> None:
        check_supported(cfg)
        w = weight.detach().cpu().double().numpy() if isinstance(weight, torch.Tensor) else np.asarray(weight, float)
        if w.ndim != 2 or not np.all(np.isfinite(w)):
            raise ValueError(f"`weight` must be a finite 2-D [out, in] matrix, got shape {w.shape}")
        self.cfg, self.dtype, self.device = cfg, dtype, torch.device(device)
        self.out_features, self.in_features = w.shape
        self.n_max = pwm.n_max(cfg.pwm.bits)
        self.q_lsb_fc = adc_mod.q_lsb_fc(cfg.adc.i_ref_ua, cfg.adc.f_adc_ghz)
        rngs = rngs or ChipRngs.from_seed(0)
        rows, cols = cfg.circuit.rows, cfg.circuit.cols
        self.blocks = [self._program(w[o, i].T, i, o, rngs)
                       for i in block_slices(self.in_features, rows)
                       for o in block_slices(self.out_features, cols)]
        self._weight = torch.as_tensor(w, dtype=dtype, device=self.device)  # digital reference for calibration
        self.output_gain: Optional[torch.Tensor] = None  # digital per-column gains (calibrate_output_gain)

    # ------------------------------------------------------------------------------------------------------------
    # Programming

    def _program(self, w_blk: np.ndarray, inputs: slice, outputs: slice, rngs: ChipRngs) -> _Block:
        dev, circ = self.cfg.device, self.cfg.circuit
        mapped = map_block(w_blk, g_min_us=dev.g_min_us, g_max_us=dev.g_max_us, rows=circ.rows,
                           placement=circ.placement, per_column=circ.weight_scaling == WeightScaling.column)
        used = mapped.used
        g_pos, g_neg = mapped.g_pos.copy(), mapped.g_neg.copy()
        if dev.programming_noise:  # only the block's own cells are programmed; unused rows stay at 0 µS
            g_pos[used] = pcm.programming_noise(g_pos[used], dev.g_max_us, rngs.programming)
            g_neg[used] = pcm.programming_noise(g_neg[used], dev.g_max_us, rngs.programming)
        tau_prog = self._tau(g_pos, g_neg)
        w_prog = self._effective(g_pos, g_neg, tau_prog)[used]

        t = self.cfg.t_inference_s
        g_pos_t, g_neg_t = g_pos, g_neg
        if dev.drift or dev.one_over_f:
            g_pos_t, g_neg_t = g_pos.copy(), g_neg.copy()
            for g_p, g_t in ((g_pos, g_pos_t), (g_neg, g_neg_t)):
                g_now = g_p[used]
                if dev.drift:
                    nu = pcm.drift_exponents(g_p[used], dev.g_max_us, rngs.drift)
                    g_now = pcm.drifted(g_p[used], nu, t, dev.t0_s)
                if dev.one_over_f:
                    g_now = pcm.one_over_f_noise(g_p[used], g_now, dev.g_max_us, t, rngs.drift, dev.t0_s,
                                                 dev.t_read_ns)
                g_t[used] = g_now
        tau = self._tau(g_pos_t, g_neg_t) if g_pos_t is not g_pos else tau_prog
        w_eff = self._effective(g_pos_t, g_neg_t, tau)[used] if g_pos_t is not g_pos else w_prog
        gain = 1.0
        if dev.drift_compensation and (dev.drift or dev.one_over_f):
            # Probe: one-hot full-scale inputs, whose responses are the rows of τ ⊙ (G+ - G-) (see pcm.py).
            gain = pcm.drift_compensation_gain(w_prog, w_eff)
        as_t = lambda a: torch.as_tensor(a, dtype=self.dtype, device=self.device)  # noqa: E731
        moments = None
        if dev.read_noise:
            reduced = dev.read_noise_precision == NoisePrecision.bfloat16
            moments = noise_moments(as_t(tau[used]), as_t((g_pos_t - g_neg_t)[used]),
                                    torch.bfloat16 if reduced else None)
        # Weight units per µS of effective conductance, per output: the digital gain after the ADC (and drift).
        unit = gain / mapped.scale if np.isscalar(mapped.scale) else as_t(gain / mapped.scale)
        return _Block(inputs, outputs, mapped, g_pos_t, g_neg_t, tau[used], as_t(w_eff), moments, unit)

    def _tau(self, g_pos: np.ndarray, g_neg: np.ndarray) -> np.ndarray:
        circ = self.cfg.circuit
        if not circ.irdrop:
            return np.ones_like(g_pos)
        return transfer_factors(g_pos, g_neg, r_wire_ohm=circ.r_wire_ohm, adc_sides=circ.adc_sides,
                                segments=circ.segments)

    def _effective(self, g_pos: np.ndarray, g_neg: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """Effective conductances (µS): τ ⊙ (G+ - G-) for the column ladder, the 2-D solve with row wires."""
        circ = self.cfg.circuit
        if circ.irdrop and circ.r_row_ohm > 0:
            return effective_conductance_2d(g_pos, g_neg, r_wire_ohm=circ.r_wire_ohm, r_row_ohm=circ.r_row_ohm,
                                            adc_sides=circ.adc_sides.value)
        return tau * (g_pos - g_neg)

    def effective_weight(self) -> torch.Tensor:
        """The weights the tile computes with (IR-drop, device state, drift gain), ``[out, in]``, weight units."""
        w = torch.zeros(self.out_features, self.in_features, dtype=self.dtype, device=self.device)
        for b in self.blocks:
            w[b.outputs, b.inputs] = (b.w_eff * b.unit).T
        return w

    # ------------------------------------------------------------------------------------------------------------
    # MVM

    def calibrate_output_gain(self, probe: torch.Tensor, r_in, per_column: bool) -> torch.Tensor:
        """Fit digital output gains that map the tile's response to probe inputs onto the digital product.

        A named mitigation (``eval.calibration``): on a chip, known probe vectors are applied after programming and
        read many times; the average read is the noise-free response used here. The gain is the least-squares
        ``g = <y_ref, y_tile> / <y_tile, y_tile>`` per column (``per_column``) or over the whole layer, with
        ``y_ref`` the digital product of the PWM-quantized probe. Returns (and stores) the gains ``[out]``.
        """
        self.output_gain = None
        y_tile = self(probe, r_in, read_noise=False).reshape(-1, self.out_features).double()
        r = torch.as_tensor(r_in, dtype=self.dtype, device=probe.device)
        x_q = self._pulse_lengths(probe.to(self.dtype), r) * (r / self.n_max)
        y_ref = (x_q @ self._weight.T).reshape(-1, self.out_features).double()
        dims = 0 if per_column else (0, 1)
        num, den = (y_ref * y_tile).sum(dims), (y_tile * y_tile).sum(dims)
        gain = torch.where(den > 0, num / torch.where(den > 0, den, 1.0), torch.ones_like(num))
        self.output_gain = gain.expand(self.out_features).to(self.dtype).contiguous()
        return self.output_gain

    def __call__(self, x: torch.Tensor, r_in, generator: Optional[torch.Generator] = None, *,
                 read_noise: bool = True) -> torch.Tensor:
        """``y ≈ x @ W.T`` through the tiles, ``[..., in]`` → ``[..., out]``.

        ``r_in``: the input range, a scalar (calibrated, per layer) or a tensor broadcastable to ``[..., 1]``
        (dynamic, per token; must be > 0). ``generator``: the per-MVM read-noise generator (required when read
        noise is on), on ``x``'s device. ``read_noise=False``: the expected (noise-free) response.
        """
        cfg = self.cfg
        noisy = cfg.device.read_noise and read_noise
        if x.shape[-1] != self.in_features:
            raise ValueError(f"`x` has {x.shape[-1]} features, the tile array expects {self.in_features}")
        if noisy and generator is None:
            raise ValueError("`generator` is required when tile.device.read_noise is on")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features).to(self.dtype)
        r = torch.as_tensor(r_in, dtype=self.dtype, device=x2.device)
        r = r.reshape(-1, 1) if r.dim() > 0 else r.reshape(1, 1)
        if r.shape[0] not in (1, x2.shape[0]):
            raise ValueError(f"`r_in` must be a scalar or one value per token, got shape {tuple(r.shape)}")
        if bool(torch.isnan(x2).any()):
            raise ValueError("`x` contains NaN")
        n = self._pulse_lengths(x2, r)  # [N, in]
        multi_window = cfg.pwm.enabled and cfg.pwm.mode != PwmMode.one_pass

        y = torch.zeros(x2.shape[0], self.out_features, dtype=self.dtype, device=x2.device)
        for b in self.blocks:
            n_blk = n[:, b.inputs]
            windows = (pwm.windows(n_blk, cfg.pwm.bits, cfg.pwm.mode, cfg.pwm.split_low_bits)
                       if multi_window else [(n_blk, 1)])
            slots = (pwm.window_slots(cfg.pwm.bits, cfg.pwm.mode, cfg.pwm.split_low_bits)
                     if multi_window else [self.n_max])
            to_weight_units = b.unit / self._charge_per_weight_unit()
            y_blk = y[:, b.outputs]
            for (durations, weight), window in zip(windows, slots):
                q = self._window_charge(b, durations.to(self.dtype), generator if noisy else None, window)
                # The digital weighted sum of windows and row-blocks, in weight units.
                if isinstance(to_weight_units, torch.Tensor):
                    y_blk.addcmul_(q, to_weight_units, value=weight)
                else:
                    y_blk.add_(q, alpha=weight * to_weight_units)
        y.mul_(r)
        if self.output_gain is not None:
            y.mul_(self.output_gain)
        return y.reshape(*lead, self.out_features)

    def _pulse_lengths(self, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """Signed pulse lengths in slots (float): ``round(clip(x/r_in, ±1)·n_max)`` with PWM (spec 2; the rounding
        of ``circuit.pwm.quantize``), unrounded for an ideal DAC (a limit for studies, not a realisable chip)."""
        n = (x / r).clamp_(-1.0, 1.0).mul_(self.n_max)
        return n.round_() if self.cfg.pwm.enabled else n

    def _charge_per_weight_unit(self) -> float:
        c = self.cfg.circuit
        return c.dv_v * c.t_slot_ns * self.n_max

    def _window_charge(self, b: _Block, d: torch.Tensor, generator, window_slots: int) -> torch.Tensor:
        """ADC output charge (fC) of each column for one PWM window with pulse lengths ``d`` ``[N, n_in]``."""
        cfg, circ = self.cfg, self.cfg.circuit
        drive = circ.dv_v * circ.t_slot_ns
        if circ.method == IrDropMethod.time_stepped and circ.irdrop:
            full = np.zeros((d.shape[0], circ.rows), dtype=np.int64)
            full[:, b.mapped.used] = d.detach().cpu().numpy().astype(np.int64)
            q_np = column_charge_2d(b.g_pos, b.g_neg, full, r_wire_ohm=circ.r_wire_ohm, r_row_ohm=circ.r_row_ohm,
                                    dv_v=circ.dv_v, t_slot_ns=circ.t_slot_ns, idle_rows=circ.idle_rows.value,
                                    method="time_stepped", adc_sides=circ.adc_sides.value)
            q = torch.as_tensor(q_np, dtype=self.dtype, device=d.device)
        else:
            q = None
        noise = None
        if generator is not None and b.moments is not None:
            t_mean = d.abs().mean(dim=-1) * circ.t_slot_ns  # each token's own mean pulse length, ns
            # The std is linear in the drive c = dv·t_slot·n, so the pulse lengths go in as c and the drive as scale.
            noise = sample_column_noise(d, None, None, t_mean, generator, cfg.device.read_noise_scale * drive,
                                        moments=b.moments)
        if q is None:  # Q = dv·t_slot·(n @ (τ ⊙ (G+ - G-))) (+ noise), one fused GEMM
            q = torch.addmm(noise, d, b.w_eff, alpha=drive) if noise is not None else torch.mm(d, b.w_eff).mul_(drive)
        elif noise is not None:
            q = q.add_(noise)
        return self._adc(q, d.shape[-1], window_slots)

    def _adc(self, q: torch.Tensor, n_in: int, window_slots: int) -> torch.Tensor:
        """The ADC's output charge (fC) for the column charges ``q``, which it may overwrite (callers own them)."""
        a = self.cfg.adc
        if a.kind == AdcKind.cco:  # q is NaN-free by construction (x is checked, weights are finite)
            return adc_mod.cco_counts_(q, self.q_lsb_fc, a.bits).mul_(self.q_lsb_fc)
        if a.kind == AdcKind.uniform:
            # Full scale: every used row on for the whole window at g_max (the column's largest charge).
            c = self.cfg.circuit
            q_fs = c.dv_v * c.t_slot_ns * window_slots * self.cfg.device.g_max_us * n_in
            return adc_mod.uniform(q, a.bits, a.range_fs * q_fs)
        return q


def transfer_matrix(weight, cfg: TileConfig) -> torch.Tensor:
    """IR-drop factors τ arranged like the weight, ``[out, in]``, so that the tile computes ``τ ⊙ W`` (spec 3.1).

    For the noise-free mapping of ``weight`` (``G+ - G- = s·W``, so τ is all the tile changes). Used by
    tile-aware training, which holds τ fixed within a step and refreshes it as the weights move. Ones when
    ``cfg.circuit.irdrop`` is off.
    """
    w = weight.detach().cpu().double().numpy() if isinstance(weight, torch.Tensor) else np.asarray(weight, float)
    dtype = weight.dtype if isinstance(weight, torch.Tensor) else torch.float64
    device = weight.device if isinstance(weight, torch.Tensor) else "cpu"
    circ, dev = cfg.circuit, cfg.device
    tau = np.ones_like(w)
    if circ.irdrop:
        for i in block_slices(w.shape[1], circ.rows):
            for o in block_slices(w.shape[0], circ.cols):
                m = map_block(w[o, i].T, g_min_us=dev.g_min_us, g_max_us=dev.g_max_us, rows=circ.rows,
                              placement=circ.placement, per_column=circ.weight_scaling == WeightScaling.column)
                t = transfer_factors(m.g_pos, m.g_neg, r_wire_ohm=circ.r_wire_ohm, adc_sides=circ.adc_sides,
                                     segments=circ.segments)
                tau[o, i] = t[m.used].T
    return torch.as_tensor(tau, dtype=dtype, device=device)
