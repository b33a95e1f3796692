"""The programmed tile array: ideal limits, agreement with the circuit solvers, blocks, converters, noise."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from aimc_runner.circuit import column_charge
from aimc_runner.circuit.adc import q_lsb_fc
from aimc_runner.circuit.reference import column_charge_dense_2d
from aimc_runner.config import (AdcConfig, AdcKind, CircuitConfig, DeviceConfig, IdleRows, IrDropMethod, PwmConfig,
                                NoisePrecision, PwmMode, TileConfig, WeightScaling)
from aimc_runner.device.mapping import map_block
from aimc_runner.device.read_noise import column_noise_std
from aimc_runner.tile import AnalogTileArray, ChipRngs

F64 = dict(dtype=torch.float64)


def tile_cfg(rows=64, cols=64, *, irdrop=False, r=0.5, adc=AdcKind.none, pwm=True, read_noise=False,
             method=IrDropMethod.effective, idle=IdleRows.hold, mode=PwmMode.one_pass, adc_bits=None,
             **device) -> TileConfig:
    return TileConfig(
        name="test", analog=True,
        device=DeviceConfig(read_noise=read_noise, **device),
        circuit=CircuitConfig(rows=rows, cols=cols, irdrop=irdrop, r_wire_ohm=r, method=method, idle_rows=idle),
        adc=AdcConfig(kind=adc, bits=adc_bits), pwm=PwmConfig(enabled=pwm, mode=mode))


def data(out=24, inp=40, batch=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out, inp, generator=g, **F64) * 0.1
    x = torch.randn(batch, inp, generator=g, **F64)
    return w, x


def quantized(x, r, bits=8):
    full = 2 ** (bits - 1) - 1
    return torch.round(torch.clamp(x / r, -1, 1) * full) * r / full


def test_ideal_tile_is_the_product_of_the_quantized_inputs():
    w, x = data()
    y = AnalogTileArray(w, tile_cfg(), **F64)(x, 2.0)
    torch.testing.assert_close(y, quantized(x, 2.0) @ w.T, rtol=1e-12, atol=1e-12)


def test_without_pwm_and_effects_the_tile_is_the_digital_product():
    w, x = data()
    y = AnalogTileArray(w, tile_cfg(pwm=False), **F64)(x, 10.0)
    torch.testing.assert_close(y, x @ w.T, rtol=1e-12, atol=1e-12)


def test_layers_larger_than_a_tile_are_split_and_partial_sums_added():
    w, x = data(out=70, inp=90)
    arr = AnalogTileArray(w, tile_cfg(rows=32, cols=16), **F64)
    assert len(arr.blocks) == 3 * 5
    torch.testing.assert_close(arr(x, 2.0), quantized(x, 2.0) @ w.T, rtol=1e-12, atol=1e-12)


def test_any_batch_shape_and_per_token_ranges():
    w, _ = data()
    x = torch.randn(2, 3, 40, **F64)
    r = x.abs().amax(-1, keepdim=True)
    y = AnalogTileArray(w, tile_cfg(), **F64)(x, r)
    assert y.shape == (2, 3, 24)
    torch.testing.assert_close(y, quantized(x, r) @ w.T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", [PwmMode.split, PwmMode.bit_serial])
def test_multi_window_modes_equal_one_pass_without_an_adc(mode):
    w, x = data()
    ref = AnalogTileArray(w, tile_cfg(irdrop=True), **F64)(x, 2.0)
    y = AnalogTileArray(w, tile_cfg(irdrop=True, mode=mode), **F64)(x, 2.0)
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scaling", [WeightScaling.tile, WeightScaling.column])
@pytest.mark.parametrize("adc_sides", ["both", "south"])
def test_irdrop_tile_equals_the_circuit_solver_on_the_mapped_conductances(adc_sides, scaling):
    w, x = data(out=12, inp=20)
    w[3] *= 20.0  # one output with much larger weights: per-column scaling matters
    cfg = tile_cfg(rows=32, cols=16, irdrop=True, r=1.0)
    cfg.circuit.adc_sides = type(cfg.circuit.adc_sides)(adc_sides)
    cfg.circuit.weight_scaling = scaling
    y = AnalogTileArray(w, cfg, **F64)(x, 2.0)
    m = map_block(w.T.numpy(), g_min_us=0.0, g_max_us=25.0, rows=32, per_column=scaling == WeightScaling.column)
    n = np.zeros((x.shape[0], 32), dtype=np.int64)
    n[:, m.used] = torch.round(torch.clamp(x / 2.0, -1, 1) * 127).numpy().astype(np.int64)
    q = column_charge(m.g_pos, m.g_neg, n, r_wire_ohm=1.0, method="time_stepped", adc_sides=adc_sides)
    expected = q * 2.0 / (m.scale * 0.2 * 1.0 * 127)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-12)
    assert not np.allclose(y.numpy(), (quantized(x, 2.0) @ w.T).numpy(), rtol=1e-4)  # IR-drop is visible


@pytest.mark.parametrize("method", [IrDropMethod.effective, IrDropMethod.time_stepped])
def test_row_wires_tile_equals_the_2d_crossbar_solver_on_the_mapped_conductances(method):
    w, x = data(out=6, inp=12, batch=3)
    cfg = tile_cfg(rows=16, cols=8, irdrop=True, r=1.0, method=method)
    cfg.circuit.r_row_ohm = 50.0  # large, so that the row wires change the outputs far above the tolerance
    y = AnalogTileArray(w, cfg, **F64)(x, 2.0)
    m = map_block(w.T.numpy(), g_min_us=0.0, g_max_us=25.0, rows=16)
    n = np.zeros((x.shape[0], 16), dtype=np.int64)
    n[:, m.used] = torch.round(torch.clamp(x / 2.0, -1, 1) * 127).numpy().astype(np.int64)
    q = column_charge_dense_2d(m.g_pos, m.g_neg, n, r_wire_ohm=1.0, r_row_ohm=50.0, dv_v=0.2, t_slot_ns=1.0,
                               idle_rows="hold", adc_sides="both")
    np.testing.assert_allclose(y.numpy(), q * 2.0 / (m.scale * 0.2 * 1.0 * 127), rtol=1e-10, atol=1e-12)
    cfg.circuit.r_row_ohm = 0.0
    assert not np.allclose(y.numpy(), AnalogTileArray(w, cfg, **F64)(x, 2.0).numpy(), rtol=1e-3)


def test_row_wires_refuse_what_they_cannot_simulate_exactly():
    with pytest.raises(ValueError, match="tile.device.read_noise.*r_row_ohm"):
        cfg = tile_cfg(irdrop=True, read_noise=True)
        cfg.circuit.r_row_ohm = 0.15
        cfg.check_supported()
    with pytest.raises(ValueError, match="tile.circuit.r_row_ohm"):
        CircuitConfig(r_row_ohm=-1.0)


@pytest.mark.parametrize("idle", [IdleRows.hold, IdleRows.float])
def test_time_stepped_tile_path(idle):
    w, x = data(out=10, inp=64)
    cfg = tile_cfg(rows=64, cols=16, irdrop=True, r=1.0, method=IrDropMethod.time_stepped, idle=idle)
    y = AnalogTileArray(w, cfg, **F64)(x, 2.0)
    if idle == IdleRows.hold:
        ref = AnalogTileArray(w, tile_cfg(rows=64, cols=16, irdrop=True, r=1.0), **F64)(x, 2.0)
        torch.testing.assert_close(y, ref, rtol=1e-9, atol=1e-12)
    else:
        ideal = quantized(x, 2.0) @ w.T
        assert torch.all((y - ideal).abs() < 0.2 * ideal.abs().max())


def test_cco_adc_outputs_whole_counts():
    w, x = data()
    cfg = tile_cfg(adc=AdcKind.cco)
    arr = AnalogTileArray(w, cfg, **F64)
    y = arr(x, 2.0)
    b = arr.blocks[0]
    counts = y / 2.0 * (b.mapped.scale * 0.2 * 127) / q_lsb_fc()
    torch.testing.assert_close(counts, torch.round(counts), rtol=0, atol=1e-9)
    ideal = quantized(x, 2.0) @ w.T
    lsb_in_weight_units = q_lsb_fc() * 2.0 / (b.mapped.scale * 0.2 * 127)
    assert torch.all((y - ideal).abs() < lsb_in_weight_units + 1e-12)  # truncation: less than one period


def test_read_noise_is_reproducible_and_has_the_model_std():
    w, x = data(out=8, inp=30, batch=4)
    cfg = tile_cfg(read_noise=True)
    arr = AnalogTileArray(w, cfg, **F64)
    y1 = arr(x, 2.0, torch.Generator().manual_seed(1))
    y2 = arr(x, 2.0, torch.Generator().manual_seed(1))
    y3 = arr(x, 2.0, torch.Generator().manual_seed(2))
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    assert not torch.equal(y1, y3)
    # Empirical std over many draws of one token equals the exact column noise std.
    xs = x[:1].expand(20000, -1)
    ys = arr(xs, 2.0, torch.Generator().manual_seed(3))
    b = arr.blocks[0]
    n = torch.round(torch.clamp(x[:1] / 2.0, -1, 1) * 127)
    std_q = column_noise_std(0.2 * n, None, None, n.abs().mean(-1), moments=b.moments)
    std_y = std_q * 2.0 / (b.mapped.scale * 0.2 * 127)
    torch.testing.assert_close(ys.std(0), std_y[0], rtol=0.03, atol=0)


def test_bfloat16_read_noise_changes_only_the_noise_std_slightly():
    # Same generator → the same ξ; bf16 variance GEMM → each output's noise std within 0.3 %. No ADC, so the
    # difference is the noise difference itself: |Δy| <= 0.3 % of |noise|.
    w, x = data(out=70, inp=100, batch=16)
    w, x = w.float(), x.float()
    cfg32 = tile_cfg(rows=128, irdrop=True, read_noise=True)  # one row-block: one noise draw per output
    cfg16 = tile_cfg(rows=128, irdrop=True, read_noise=True, read_noise_precision=NoisePrecision.bfloat16)
    a32, a16 = AnalogTileArray(w, cfg32), AnalogTileArray(w, cfg16)
    assert a16.blocks[0].moments.dtype == torch.bfloat16
    clean = a32(x, 2.0, read_noise=False)
    torch.testing.assert_close(a16(x, 2.0, read_noise=False), clean, rtol=0, atol=0)
    y32 = a32(x, 2.0, torch.Generator().manual_seed(4))
    y16 = a16(x, 2.0, torch.Generator().manual_seed(4))
    noise32 = y32 - clean
    assert not torch.equal(y16, y32)
    assert torch.all((y16 - y32).abs() <= 3e-3 * noise32.abs() + 1e-5)


def test_programming_noise_is_drawn_from_the_chip_generator():
    w, x = data()
    cfg = tile_cfg(programming_noise=True)
    y1 = AnalogTileArray(w, cfg, ChipRngs.from_seed(5), **F64)(x, 2.0)
    y2 = AnalogTileArray(w, cfg, ChipRngs.from_seed(5), **F64)(x, 2.0)
    y3 = AnalogTileArray(w, cfg, ChipRngs.from_seed(6), **F64)(x, 2.0)
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    assert not torch.equal(y1, y3)


def test_drift_compensation_restores_the_response_scale():
    w, x = data(out=32, inp=48)
    cfg = tile_cfg(drift=True, drift_compensation=False)
    cfg.t_inference_s = 3600.0 * 24 * 365
    ideal = quantized(x, 2.0) @ w.T
    raw = AnalogTileArray(w, cfg, ChipRngs.from_seed(0), **F64)(x, 2.0)
    cfg.device.drift_compensation = True
    comp = AnalogTileArray(w, cfg, ChipRngs.from_seed(0), **F64)(x, 2.0)
    assert raw.abs().mean() < 0.8 * ideal.abs().mean()  # a year of drift shrinks the outputs
    assert abs(comp.abs().mean() / ideal.abs().mean() - 1) < 0.1


def test_per_column_scaling_is_invisible_without_converters_and_uses_more_adc_counts():
    w, x = data(out=20, inp=30)
    w[:, :] *= torch.logspace(-2, 0, 20, **F64)[:, None]  # outputs spanning two decades of weight range
    tile_s, col_s = tile_cfg(), tile_cfg()
    col_s.circuit.weight_scaling = WeightScaling.column
    # Linear tile (no ADC, no IR-drop, no noise): the scale cancels exactly.
    torch.testing.assert_close(AnalogTileArray(w, col_s, **F64)(x, 2.0), AnalogTileArray(w, tile_s, **F64)(x, 2.0),
                               rtol=1e-12, atol=1e-14)
    # CCO ADC: the small outputs now get their column's full charge range, so their error drops.
    ref = quantized(x, 2.0) @ w.T
    tile_s.adc.kind = col_s.adc.kind = AdcKind.cco
    err_tile = (AnalogTileArray(w, tile_s, **F64)(x, 2.0) - ref).abs()[:, :10].mean()
    err_col = (AnalogTileArray(w, col_s, **F64)(x, 2.0) - ref).abs()[:, :10].mean()
    assert err_col < 0.2 * err_tile
    # With IR-drop the tile computes the effective weights it reports, and transfer_matrix (tile_aware) agrees.
    cfg = tile_cfg(irdrop=True, r=1.0, pwm=False)
    cfg.circuit.weight_scaling = WeightScaling.column
    arr = AnalogTileArray(w, cfg, **F64)
    torch.testing.assert_close(arr(x, 10.0), x @ arr.effective_weight().T, rtol=1e-12, atol=1e-12)
    from aimc_runner.tile import transfer_matrix

    torch.testing.assert_close(arr.effective_weight(), transfer_matrix(w, cfg) * w, rtol=1e-12, atol=1e-14)


def test_effective_weight_matches_the_mvm_without_converters():
    w, x = data()
    arr = AnalogTileArray(w, tile_cfg(irdrop=True, r=1.0, pwm=False), **F64)
    torch.testing.assert_close(arr(x, 10.0), x @ arr.effective_weight().T, rtol=1e-12, atol=1e-12)


def test_unsupported_combinations_fail_before_any_work():
    w, _ = data()
    with pytest.raises(ValueError, match="pwm"):
        AnalogTileArray(w, tile_cfg(irdrop=True, pwm=False, method=IrDropMethod.time_stepped))
    with pytest.raises(ValueError, match="read_noise"):
        AnalogTileArray(w, tile_cfg(irdrop=True, read_noise=True, method=IrDropMethod.time_stepped,
                                    idle=IdleRows.float))
    with pytest.raises(ValueError, match="weight"):
        AnalogTileArray(torch.full((3, 3), float("nan")), tile_cfg())


def test_transfer_matrix_gives_the_tiles_effective_weights():
    w, x = data(out=70, inp=90)
    cfg = tile_cfg(rows=32, cols=16, irdrop=True, r=1.0, pwm=False)
    from aimc_runner.tile import transfer_matrix

    tau = transfer_matrix(w, cfg)
    assert tau.shape == w.shape and bool((tau > 0).all() and (tau <= 1).all())
    torch.testing.assert_close(AnalogTileArray(w, cfg, **F64).effective_weight(), tau * w, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("per_column", [False, True])
def test_output_gain_calibration_undoes_the_irdrop_attenuation(per_column):
    w, x = data(out=32, inp=60, batch=64)
    cfg = tile_cfg(rows=64, cols=32, irdrop=True, r=20.0)
    arr = AnalogTileArray(w, cfg, **F64)
    ideal = quantized(x, 3.0) @ w.T
    before = (arr(x, 3.0) - ideal).pow(2).mean()
    gain = arr.calibrate_output_gain(torch.randn(256, 60, generator=torch.Generator().manual_seed(1), **F64), 3.0,
                                     per_column)
    after = (arr(x, 3.0) - ideal).pow(2).mean()
    assert gain.shape == (32,) and bool((gain > 1).all())  # IR-drop attenuates: gains above one
    assert after < 0.5 * before
    if not per_column:
        assert torch.all(gain == gain[0])


def test_noise_free_read_is_the_mean_of_noisy_reads():
    w, x = data(out=8, inp=30, batch=1)
    arr = AnalogTileArray(w, tile_cfg(read_noise=True), **F64)
    mean = arr(x.expand(20000, -1), 2.0, torch.Generator().manual_seed(0)).mean(0)
    torch.testing.assert_close(mean, arr(x, 2.0, read_noise=False)[0], rtol=0, atol=3e-3 * mean.abs().max())


@pytest.mark.parametrize("mode", [PwmMode.one_pass, PwmMode.split, PwmMode.bit_serial])
def test_uniform_adc_full_scale_follows_each_window(mode):
    # range_fs = 1: full scale is every used row on for the whole window at g_max, so nothing clips and the
    # error is at most half a step of that window's full scale per window.
    w, x = data()
    cfg = tile_cfg(adc=AdcKind.uniform, mode=mode, adc_bits=12)
    arr = AnalogTileArray(w, cfg, **F64)
    ideal = quantized(x, 2.0) @ w.T
    from aimc_runner.circuit.pwm import window_slots

    slots = window_slots(8, mode.value, 3)
    weights = [1] if mode == PwmMode.one_pass else ([1, 8] if mode == PwmMode.split else [2**k for k in range(7)])
    half_steps = sum(wt * 0.2 * s * 25.0 * 40 / 2047 / 2 for wt, s in zip(weights, slots))  # fC
    bound = half_steps * 2.0 / (arr.blocks[0].mapped.scale * 0.2 * 127)
    assert torch.all((arr(x, 2.0) - ideal).abs() <= bound + 1e-12)
