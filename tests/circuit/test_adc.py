"""Column ADC (spec section 4)."""

import numpy as np
import pytest
import torch

from aimc_runner.circuit import adc

Q = adc.q_lsb_fc()  # 100 µA / 6.24 GHz


def test_q_lsb():
    assert Q == pytest.approx(16.025641025641, rel=1e-12)
    assert adc.q_lsb_fc(50.0, 5.0) == 10.0


def test_cco_truncates_toward_zero():
    q = torch.tensor([16.02, 16.03, -32.1, -16.02, 0.0, 47.0, 48.1, -1e-9], dtype=torch.float64)
    out = adc.cco(q, Q)
    counts = torch.round(out / Q).tolist()
    assert counts == [0, 1, -2, 0, 0, 2, 3, 0]
    assert out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), np.array(counts) * Q, rtol=0, atol=1e-12)


def test_cco_saturation():
    q = torch.tensor([1e6, -1e6, 5 * Q + 1, -(3 * Q + 1)], dtype=torch.float32)
    counts = torch.round(adc.cco(q, Q, bits=4) / Q).tolist()  # ±7 counts
    assert counts == [7, -7, 5, -3]
    assert adc.cco(q, Q, bits=4).dtype == torch.float32


def test_cco_numpy():
    out = adc.cco(np.array([16.02, 16.03, -32.1]), Q)
    np.testing.assert_allclose(out / Q, [0, 1, -2], atol=1e-12)


def test_uniform_round_to_nearest_and_clip():
    # bits=3: 3 levels per side over ±30 fC, step 10 fC.
    q = torch.tensor([0.0, 4.9, 5.1, -14.9, -15.1, 29.0, 31.0, -100.0], dtype=torch.float64)
    out = adc.uniform(q, 3, 30.0)
    assert out.tolist() == [0.0, 0.0, 10.0, -10.0, -20.0, 30.0, 30.0, -30.0]
    np.testing.assert_array_equal(adc.uniform(q.numpy(), 3, 30.0), out.numpy())


def test_uniform_per_column_range():
    q = torch.tensor([[6.0, 6.0]])
    out = adc.uniform(q, 2, torch.tensor([10.0, 20.0]))  # one level per side
    assert out.tolist() == [[10.0, 0.0]]


def test_none_is_identity():
    q = torch.randn(3, 4)
    assert adc.none(q) is q


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: adc.q_lsb_fc(0.0), "i_ref_ua"),
        (lambda: adc.q_lsb_fc(100.0, -1.0), "f_adc_ghz"),
        (lambda: adc.cco(torch.zeros(2), 0.0), "q_lsb_fc"),
        (lambda: adc.cco(torch.zeros(2), Q, bits=1), "bits"),
        (lambda: adc.cco(torch.tensor([float("nan")]), Q), "q_fc"),
        (lambda: adc.uniform(torch.zeros(2), 17, 1.0), "bits"),
        (lambda: adc.uniform(torch.zeros(2), 8, 0.0), "q_range_fc"),
        (lambda: adc.uniform(np.zeros(2), 8, np.inf), "q_range_fc"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        call()
