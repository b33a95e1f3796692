"""The analog layers of a BERT-family encoder on simulated tiles (spec tile-model.md, sections 1, 2, 7).

``convert(model)`` swaps, in place, each ``nn.Linear`` the spec puts on tiles (query, key, value, attention output,
FFN intermediate, FFN output) for an :class:`AnalogLinear` that keeps the same ``weight``/``bias`` parameters, so
``state_dict`` keys, checkpoints and ``save_pretrained`` are unchanged. Everything else stays digital. A layer runs
in one of four modes, set by the helpers below (never read from a config inside ``forward``):

- ``digital``: ``F.linear`` (the default, and every training mode in ``model.eval()``);
- ``hwa`` (training): ``W + σ·max|W_block|·ξ`` per tile block (per tile column with ``weight_scaling=column``), ξ
  redrawn every forward, straight-through; optionally PWM input and ADC output quantization with straight-through
  gradients;
- ``tile_aware`` (training): as ``hwa`` on the effective weights ``τ ⊙ W`` (τ: IR-drop transfer factors, held
  fixed and refreshed as the weights move), so the gradient w.r.t. ``W`` is ``τ ⊙ upstream``;
- ``analog`` (evaluation): ``tile(x, r_in, generator) + bias`` through a programmed :class:`AnalogTileArray`.

Typical use::

    convert(model, tile_cfg)
    set_input_ranges(model, calibrate(model, batches, tile_cfg.pwm.calibration_percentile))
    set_mode(model, "hwa", tile_cfg, noise_std=0.05, seed=train_seed)      # fine-tuning
    program(model, tile_cfg, chip_seed)                                     # evaluation
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .circuit import adc, pwm
from .config import AdcKind, IdleRows, InputRange, PwmMode, TileConfig, WeightScaling
from .tile import AnalogTileArray, ChipRngs, block_slices, check_supported, transfer_matrix

__all__ = ["ANALOG_LAYERS", "MODES", "AnalogLinear", "convert", "analog_layers", "calibrate", "set_input_ranges",
           "set_mode", "program"]

# Module names (as in ``named_modules()``, with or without the task model's prefix) of the analog layers.
# Checked against transformers 5.25's modeling files; the pooler, classifier, ALBERT's embedding projection and
# ELECTRA's ``embeddings_project`` do not match.
_ENCODER = (r"(?:^|\.)encoder\.layer\.\d+\."
            r"(?:attention\.self\.(?:query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)$")
ANALOG_LAYERS: dict[str, str] = {
    "bert": _ENCODER,
    "roberta": _ENCODER,
    "xlm-roberta": _ENCODER,
    "camembert": _ENCODER,
    "electra": _ENCODER,
    "albert": (r"(?:^|\.)encoder\.albert_layer_groups\.\d+\.albert_layers\.\d+\."
               r"(?:attention\.(?:query|key|value|dense)|ffn|ffn_output)$"),
    "distilbert": r"(?:^|\.)transformer\.layer\.\d+\.(?:attention\.(?:q_lin|k_lin|v_lin|out_lin)|ffn\.lin[12])$",
}
MODES = ("digital", "hwa", "tile_aware", "analog")


@dataclass(frozen=True)
class _Training:
    """What a training-mode forward needs, resolved once by :func:`set_mode` (plain values, no config)."""

    sigma: float  # relative weight-noise std
    rows: int  # tile block: inputs
    cols: int  # tile block: outputs
    generator: torch.Generator  # training-noise timescale, shared by the model's layers
    quantize_inputs: bool
    quantize_outputs: bool
    bits: int  # PWM resolution
    charge_per_unit: float  # dv·t_slot·n_max, fC per (µS · full-scale input)
    g_span_us: float  # g_max - g_min: s = g_span / max|W_block|
    per_column: bool  # weight_scaling=column: max|W| over each tile column instead of the block
    g_max_us: float
    adc_kind: AdcKind
    adc_bits: Optional[int]
    adc_range_fs: float
    q_lsb_fc: float
    tau_cfg: Optional[TileConfig]  # tile_aware: the circuit whose τ the forward uses
    tau_refresh_steps: int  # tile_aware: recompute τ after this many weight updates


def _block_abs_max(w: torch.Tensor, rows: int, cols: int, per_column: bool = False) -> torch.Tensor:
    """``max|W_block|`` of the tile block holding each weight, ``[out, in]`` like ``w``.

    ``per_column``: the max over the weight's own tile column instead (its output's weights within the block), the
    quantity ``weight_scaling=column`` maps to ``g_max``.
    """
    out, inp = w.shape
    a = F.pad(w.abs(), (0, -inp % rows, 0, -out % cols))  # [out', in'], multiples of the block size
    if per_column:
        m = a.reshape(a.shape[0], a.shape[1] // rows, rows).amax(dim=2)  # [out', blocks_in]
        return m.repeat_interleave(rows, 1)[:out, :inp]
    m = a.reshape(a.shape[0] // cols, cols, a.shape[1] // rows, rows).amax(dim=(1, 3))  # [blocks_out, blocks_in]
    return m.repeat_interleave(cols, 0).repeat_interleave(rows, 1)[:out, :inp]


def _derive_seed(seed: int, label: str) -> int:
    """A stable 63-bit seed from (seed, label): the same on every machine and Python run (unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{label}".encode()).digest()[:8], "little") >> 1


class AnalogLinear(nn.Module):
    """An ``nn.Linear`` whose product may run on analog tiles; holds the original ``weight`` and ``bias``.

    Attributes
    ----------
    mode : str
        One of :data:`MODES`, set by :func:`set_mode` / :func:`program`.
    r_in : float or None
        Calibrated input range (layer units), from :func:`set_input_ranges`.
    dynamic_range : bool
        Use each token's own abs-max as ``r_in`` instead (``pwm.input_range=dynamic``).
    tile : AnalogTileArray or None
        The programmed tiles (``analog``); not moved by ``model.to``: program after moving.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight  # the same Parameter objects: state_dict keys and optimizers unchanged
        self.register_parameter("bias", linear.bias)
        self.register_buffer("tau", None, persistent=False)  # tile_aware: τ [out, in], detached
        self.mode = "digital"
        self.r_in: Optional[float] = None
        self.dynamic_range = False
        self.tile: Optional[AnalogTileArray] = None
        self.read_generator: Optional[torch.Generator] = None
        self.training_spec: Optional[_Training] = None
        self._seen_version, self._updates = -1, 0

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, mode={self.mode}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., in] -> [..., out]
        if self.mode == "analog":
            y = self.tile(x.detach(), self._input_range(x), self.read_generator).to(x.dtype)
            return y if self.bias is None else y + self.bias
        if self.mode in ("hwa", "tile_aware") and self.training:
            return self._training_forward(x)
        return F.linear(x, self.weight, self.bias)

    def _input_range(self, x: torch.Tensor):
        """``r_in``: the calibrated float, or each token's abs-max ``[..., 1]`` (dynamic)."""
        if self.dynamic_range:  # an all-zero token would give 0: clamp to a tiny positive range
            return x.detach().abs().amax(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
        if self.r_in is None:
            raise RuntimeError("AnalogLinear has no input range: run calibrate() and set_input_ranges() first")
        return self.r_in

    def _transfer(self, t: _Training) -> torch.Tensor:
        """τ for the current weights, recomputed after ``tau_refresh_steps`` optimizer updates (spec 7)."""
        w = self.weight
        if w._version != self._seen_version:  # an in-place update (optimizer step, load) since the last forward
            self._seen_version, self._updates = w._version, self._updates + 1
        stale = self.tau is None or self.tau.device != w.device or self.tau.dtype != w.dtype
        if stale or self._updates >= t.tau_refresh_steps:
            self.tau = transfer_matrix(w.detach(), t.tau_cfg)
            self._updates = 0
        return self.tau

    def _training_forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.training_spec
        w_abs_max = _block_abs_max(self.weight.detach(), t.rows, t.cols, t.per_column)  # [out, in]
        w = self._transfer(t) * self.weight if self.mode == "tile_aware" else self.weight
        if t.sigma > 0:  # additive, detached: the gradient reaches W unchanged (straight-through)
            xi = torch.randn(w.shape, generator=t.generator, device=w.device, dtype=w.dtype)
            w = w + (t.sigma * w_abs_max * xi)
        if not (t.quantize_inputs or t.quantize_outputs):
            return F.linear(x, w, self.bias)
        r = self._input_range(x)
        if t.quantize_inputs:  # PWM: x -> n·r_in/n_max, straight-through
            x_q = pwm.dequantize(pwm.quantize(x.detach(), r, t.bits), r, t.bits).to(x.dtype)
            x = x + (x_q - x).detach()
        if not t.quantize_outputs:
            return F.linear(x, w, self.bias)
        s = t.g_span_us / torch.where(w_abs_max > 0, w_abs_max, 1.0)  # µS per weight unit, [out, in]
        y = 0.0
        for rows in block_slices(self.in_features, t.rows):  # one row-block of tiles; partial sums added digitally
            y_blk = F.linear(x[..., rows], w[:, rows])  # [..., out]
            k = s[:, rows.start] * t.charge_per_unit / r  # fC per output weight unit, [out] or [..., out]
            q_hat = self._adc((y_blk * k).detach(), t, rows.stop - rows.start)
            y = y + y_blk + (q_hat / k - y_blk).detach()
        return y if self.bias is None else y + self.bias

    @staticmethod
    def _adc(q: torch.Tensor, t: _Training, n_in: int) -> torch.Tensor:
        if t.adc_kind == AdcKind.cco:
            return adc.cco(q, t.q_lsb_fc, t.adc_bits)
        if t.adc_kind == AdcKind.uniform:  # as the tile: full scale = every row on at g_max for the whole window
            return adc.uniform(q, t.adc_bits, t.adc_range_fs * t.charge_per_unit * t.g_max_us * n_in)
        return q


def analog_layers(model: nn.Module) -> dict[str, AnalogLinear]:
    """The model's analog layers by module name, sorted; a shared (ALBERT) module appears once."""
    return dict(sorted((n, m) for n, m in model.named_modules() if isinstance(m, AnalogLinear)))


def convert(model: nn.Module, tile_cfg: Optional[TileConfig] = None) -> list[str]:
    """Replace the spec's analog layers of a BERT-family model in place (still digital); return their names.

    Idempotent. ``tile_cfg``, when given, is checked up front (:func:`tile.check_supported`).

    Raises
    ------
    ValueError
        Unsupported ``config.model_type`` (the message lists :data:`ANALOG_LAYERS`), or no layer matched.
    """
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in ANALOG_LAYERS:
        raise ValueError(f"analog layers are not defined for model_type={model_type!r}; "
                         f"supported: {', '.join(sorted(ANALOG_LAYERS))}")
    if tile_cfg is not None:
        check_supported(tile_cfg)
    pattern = re.compile(ANALOG_LAYERS[model_type])
    matched = [(n, m) for n, m in model.named_modules() if pattern.search(n)]
    if not matched:
        raise ValueError(f"no analog layer found in this {model_type!r} model (pattern {pattern.pattern!r})")
    for name, module in matched:
        if isinstance(module, AnalogLinear):
            continue
        if type(module) is not nn.Linear:
            raise ValueError(f"{name} is a {type(module).__name__}, expected nn.Linear")
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, AnalogLinear(module))
    return sorted(n for n, _ in matched)


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[dict], percentile: float) -> dict[str, float]:
    """Input range per analog layer: the ``percentile`` of ``|x|`` over the layer's inputs on ``batches``.

    The model runs digitally in eval mode (modes and train/eval state are restored). ``batches`` are dicts of
    tensors as a collator gives (``labels`` ignored). When a batch has an ``attention_mask`` matching the layer
    input's ``[batch, tokens]``, only real tokens count (padding is masked out downstream anyway). A shared layer
    (ALBERT) pools all depths. Percentile: numpy's linear interpolation; deterministic given the batches.
    """
    if not 0 < percentile <= 100:
        raise ValueError(f"`percentile` must be in (0, 100], got {percentile}")
    layers = analog_layers(model)
    if not layers:
        raise ValueError("the model has no analog layers: call convert() first")
    seen: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    mask: list[Optional[torch.Tensor]] = [None]

    def recorder(name: str):
        def record(module, args):
            x = args[0].detach()
            if mask[0] is not None and x.shape[:-1] == mask[0].shape:
                x = x[mask[0].bool()]  # [real tokens, in]
            seen[name].append(x.abs().flatten().float().cpu())
        return record

    modes, was_training = {n: layer.mode for n, layer in layers.items()}, model.training
    handles = [layer.register_forward_pre_hook(recorder(n)) for n, layer in layers.items()]
    device = next(model.parameters()).device
    try:
        model.eval()
        for layer in layers.values():
            layer.mode = "digital"
        for batch in batches:
            inputs = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()
                      if k not in ("labels", "label")}
            mask[0] = inputs.get("attention_mask")
            model(**inputs)
    finally:
        for h in handles:
            h.remove()
        for n, layer in layers.items():
            layer.mode = modes[n]
        model.train(was_training)
    empty = [n for n, v in seen.items() if not v or sum(t.numel() for t in v) == 0]
    if empty:
        raise ValueError(f"calibration saw no inputs for {empty}: pass at least one non-empty batch")
    return {n: float(np.percentile(torch.cat(v).numpy(), percentile)) for n, v in seen.items()}


def set_input_ranges(model: nn.Module, ranges: dict[str, float]) -> None:
    """Set each analog layer's calibrated ``r_in``; ``ranges`` must name exactly the analog layers, all > 0."""
    layers = analog_layers(model)
    if set(ranges) != set(layers):
        raise ValueError(f"input ranges must cover exactly the analog layers; missing "
                         f"{sorted(set(layers) - set(ranges))}, unknown {sorted(set(ranges) - set(layers))}")
    bad = {n: r for n, r in ranges.items() if not (np.isfinite(r) and r > 0)}
    if bad:
        raise ValueError(f"input ranges must be finite and > 0, got {bad}")
    for name, layer in layers.items():
        layer.r_in = float(ranges[name])


def _missing_ranges(layers: dict[str, AnalogLinear], what: str) -> None:
    missing = [n for n, layer in layers.items() if layer.r_in is None]
    if missing:
        raise ValueError(f"{what} needs calibrated input ranges (pwm.input_range=calibrated) but {len(missing)} "
                         f"layers have none, e.g. {missing[0]}: run calibrate() and set_input_ranges() first")


def set_mode(model: nn.Module, mode, tile_cfg: Optional[TileConfig] = None, *, noise_std: float = 0.0,
             seed: int = 0, quantize_inputs: bool = False, quantize_outputs: bool = False,
             tau_refresh_steps: int = 1) -> Optional[torch.Generator]:
    """Put every analog layer in ``digital``, ``hwa`` or ``tile_aware`` mode (a ``TrainMode`` is accepted too;
    ``fp``/``none`` mean ``digital``). Programmed tiles are dropped.

    ``noise_std``: σ of ``W + σ·max|W_block|·ξ``; ``seed``: the training-noise generator's seed (one generator
    for the model, on the weights' device, returned so that its state can be checkpointed). ``quantize_inputs``/
    ``quantize_outputs``: PWM at ``tile_cfg.pwm.bits`` / the ``tile_cfg.adc`` converter, straight-through.
    ``tau_refresh_steps`` (tile_aware): optimizer updates between recomputations of τ.
    """
    mode = {"fp": "digital", "none": "digital"}.get(getattr(mode, "value", mode), getattr(mode, "value", mode))
    if mode not in ("digital", "hwa", "tile_aware"):
        raise ValueError(f"`mode` must be digital, hwa or tile_aware (analog: use program()), got {mode!r}")
    layers = analog_layers(model)
    if not layers:
        raise ValueError("the model has no analog layers: call convert() first")
    spec = None
    if mode != "digital":
        if tile_cfg is None:
            raise ValueError(f"mode={mode} needs the tile config (block size, PWM bits, ADC)")
        if not (np.isfinite(noise_std) and noise_std >= 0) or tau_refresh_steps < 1:
            raise ValueError(f"need noise_std >= 0 and tau_refresh_steps >= 1, got {noise_std}, {tau_refresh_steps}")
        c, p, a, d = tile_cfg.circuit, tile_cfg.pwm, tile_cfg.adc, tile_cfg.device
        if quantize_outputs and p.mode != PwmMode.one_pass:
            raise ValueError(f"output quantization in training supports pwm.mode=one_pass only, got {p.mode.value}")
        if mode == "tile_aware" and c.irdrop and c.idle_rows == IdleRows.float:
            raise ValueError("train=tile_aware needs idle_rows=hold: with floating idle rows τ depends on the input")
        dynamic = p.input_range == InputRange.dynamic
        if (quantize_inputs or quantize_outputs) and not dynamic:
            _missing_ranges(layers, "input/output quantization in training")
        device = next(iter(layers.values())).weight.device
        spec = _Training(
            sigma=float(noise_std), rows=c.rows, cols=c.cols,
            generator=torch.Generator(device=device).manual_seed(seed),
            quantize_inputs=quantize_inputs, quantize_outputs=quantize_outputs, bits=p.bits,
            charge_per_unit=c.dv_v * c.t_slot_ns * pwm.n_max(p.bits), g_span_us=d.g_max_us - d.g_min_us,
            per_column=c.weight_scaling == WeightScaling.column,
            g_max_us=d.g_max_us, adc_kind=a.kind, adc_bits=a.bits, adc_range_fs=a.range_fs,
            q_lsb_fc=adc.q_lsb_fc(a.i_ref_ua, a.f_adc_ghz), tau_cfg=tile_cfg if mode == "tile_aware" else None,
            tau_refresh_steps=tau_refresh_steps)
    for layer in layers.values():
        layer.mode, layer.training_spec, layer.tile, layer.read_generator, layer.tau = mode, spec, None, None, None
        if spec is not None:
            layer.dynamic_range = tile_cfg.pwm.input_range == InputRange.dynamic
    return None if spec is None else spec.generator


def program(model: nn.Module, tile_cfg: TileConfig, chip_seed: int, output_calibration: str = "none",
            probe_tokens: int = 256) -> None:
    """Program every analog layer's current weights onto tiles (one chip) and switch them to ``analog``.

    Each layer's programming/drift generators come from ``(chip_seed, layer name)``; one per-MVM read-noise
    ``torch.Generator`` seeded from ``chip_seed`` serves the whole model. A shared module is programmed once.
    Tiles compute in float32 on the weights' device.

    ``output_calibration`` ("none", "global", "per_column"): after programming, fit digital output gains per
    layer (or per column) from ``probe_tokens`` Gaussian probe inputs of std ``r_in/3`` drawn from the chip seed
    (:meth:`AnalogTileArray.calibrate_output_gain`).
    """
    output_calibration = getattr(output_calibration, "value", output_calibration)
    if output_calibration not in ("none", "global", "per_column"):
        raise ValueError(f"`output_calibration` must be none, global or per_column, got {output_calibration!r}")
    if not tile_cfg.analog:
        raise ValueError(f"tile {tile_cfg.name!r} has analog=false: the model stays digital, nothing to program")
    check_supported(tile_cfg)
    layers = analog_layers(model)
    if not layers:
        raise ValueError("the model has no analog layers: call convert() first")
    dynamic = tile_cfg.pwm.input_range == InputRange.dynamic
    if not dynamic:
        _missing_ranges(layers, "program()")
    device = next(iter(layers.values())).weight.device
    read_generator = torch.Generator(device=device).manual_seed(_derive_seed(chip_seed, "read-noise"))
    for name, layer in layers.items():
        rngs = ChipRngs.from_seed(_derive_seed(chip_seed, name))
        layer.tile = AnalogTileArray(layer.weight, tile_cfg, rngs, dtype=torch.float32, device=layer.weight.device)
        if output_calibration != "none":
            g = torch.Generator(device=device).manual_seed(_derive_seed(chip_seed, f"probe/{name}"))
            scale = 1.0 if dynamic else layer.r_in / 3.0
            probe = torch.randn(probe_tokens, layer.in_features, generator=g, device=device) * scale
            r = probe.abs().amax(-1, keepdim=True) if dynamic else layer.r_in
            layer.tile.calibrate_output_gain(probe, r, per_column=output_calibration == "per_column")
        layer.mode, layer.read_generator, layer.dynamic_range = "analog", read_generator, dynamic
        layer.training_spec, layer.tau = None, None
