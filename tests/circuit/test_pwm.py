"""Signed PWM input encoding (spec section 2)."""

import numpy as np
import pytest
import torch

from aimc_runner.circuit.pwm import dequantize, n_max, quantize, window_slots, windows


def test_quantize_values_and_clipping():
    x = torch.tensor([0.0, 1.0, -1.0, 0.5, 2.0, -3.0, float("inf"), 1 / 254, 0.9 / 254])
    n = quantize(x, 1.0, 8)
    assert n.dtype == torch.int64
    # round(0.5·127) = round(63.5) = 64 (half to even); 1/254·127 = 0.5 → 0 (half to even); below half → 0.
    assert n.tolist() == [0, 127, -127, 64, 127, -127, 127, 0, 0]


@pytest.mark.parametrize("bits", [2, 4, 8, 12])
def test_dequantize_within_half_lsb_inside_range(bits):
    g = torch.Generator().manual_seed(bits)
    r_in = 3.0
    x = (torch.rand(10_000, generator=g, dtype=torch.float64) * 2 - 1) * r_in
    n = quantize(x, r_in, bits)
    assert int(n.abs().max()) <= n_max(bits)
    err = (dequantize(n, torch.tensor(r_in, dtype=torch.float64), bits) - x).abs().max().item()
    assert err <= 0.5 * r_in / n_max(bits) * (1 + 1e-12)


def test_per_token_range_broadcasts_and_float32():
    x = torch.tensor([[0.1, -0.2, 0.4], [1.0, 2.0, -4.0]], dtype=torch.float32)
    r_in = x.abs().amax(dim=-1, keepdim=True)  # dynamic: each token's own abs-max, [..., 1]
    n = quantize(x, r_in, 8)
    assert n.tolist() == [[32, -64, 127], [32, 64, -127]]  # 0.25·127 = 31.75 → 32


def test_numpy_matches_torch():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 16))
    r = np.array([[0.5], [1.0], [2.0], [3.0]])
    n_np = quantize(x, r, 6)
    n_t = quantize(torch.from_numpy(x), torch.from_numpy(r), 6)
    assert n_np.dtype == np.int64
    np.testing.assert_array_equal(n_np, n_t.numpy())
    np.testing.assert_allclose(dequantize(n_np, r, 6), dequantize(n_t, torch.from_numpy(r), 6).numpy())


@pytest.mark.parametrize("bits", [3, 5, 8, 16])
@pytest.mark.parametrize("mode", ["one_pass", "split", "bit_serial"])
def test_windows_reproduce_n_exactly(bits, mode):
    low = 1 if bits == 3 else 3
    m = n_max(bits)
    n = torch.arange(-m, m + 1) if bits < 16 else torch.tensor([-m, -12345, -1, 0, 1, 777, m])
    ws = windows(n, bits, mode, split_low_bits=low)
    slots = window_slots(bits, mode, split_low_bits=low)
    assert len(ws) == len(slots)
    total = torch.zeros_like(n)
    for (d, weight), length in zip(ws, slots):
        assert d.dtype == torch.int64 and isinstance(weight, int)
        assert int(d.abs().max()) <= length  # each window fits its slot count
        assert torch.all((d == 0) | (torch.sign(d) == torch.sign(n)))  # one polarity per row
        total += weight * d
    assert torch.equal(total, n)


def test_window_slots_values():
    assert window_slots(8, "one_pass") == [127]
    assert window_slots(8, "split", 3) == [7, 15]
    assert window_slots(8, "bit_serial") == [1] * 7


def test_split_and_bit_serial_by_hand():
    n = np.array([-127, 100, -9, 5])
    (lo, w_lo), (hi, w_hi) = windows(n, 8, "split", 3)
    assert (w_lo, w_hi) == (1, 8)
    np.testing.assert_array_equal(lo, [-7, 4, -1, 5])
    np.testing.assert_array_equal(hi, [-15, 12, -1, 0])
    bs = windows(n, 8, "bit_serial")
    assert [w for _, w in bs] == [1, 2, 4, 8, 16, 32, 64]
    np.testing.assert_array_equal(bs[0][0], [-1, 0, -1, 1])  # bit 0 of 127, 100, 9, 5
    np.testing.assert_array_equal(sum(w * d for d, w in bs), n)


def test_mode_enum_like():
    class Mode:
        value = "split"

    assert window_slots(8, Mode()) == [7, 15]


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: quantize(torch.zeros(3), 1.0, 1), "bits"),
        (lambda: quantize(torch.zeros(3), 1.0, 17), "bits"),
        (lambda: quantize(torch.zeros(3), 0.0, 8), "r_in"),
        (lambda: quantize(torch.zeros(3), -1.0, 8), "r_in"),
        (lambda: quantize(torch.zeros(3), float("nan"), 8), "r_in"),
        (lambda: quantize(torch.zeros(3), float("inf"), 8), "r_in"),
        (lambda: quantize(torch.zeros(2, 3), torch.tensor([[1.0], [0.0]]), 8), "r_in"),
        (lambda: quantize(torch.tensor([float("nan")]), 1.0, 8), "x"),
        (lambda: windows(torch.tensor([128]), 8, "one_pass"), "n"),
        (lambda: windows(torch.tensor([1]), 8, "two_pass"), "mode"),
        (lambda: windows(torch.tensor([1]), 8, "split", 7), "split_low_bits"),
        (lambda: window_slots(8, "split", 0), "split_low_bits"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        call()
