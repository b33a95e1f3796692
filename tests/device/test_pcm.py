"""Long-term PCM model: programming noise, drift, 1/f noise, drift compensation (spec section 6)."""

import math

import numpy as np
import pytest
import torch

from aimc_runner.device import pcm


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_programming_noise_std_matches_polynomial():
    for g_max in (25.0, 50.0):
        for g in (0.0, 0.5, 1.0):  # normalized target
            target = g * g_max
            expected = (0.26348 + 1.9650 * g - 1.1731 * g * g) * g_max / 25.0
            assert pcm.programming_noise_std_us(target, g_max) == pytest.approx(expected)
            if target > 6 * expected:  # away from the clip at 0, the draws are plain Gaussian
                draws = pcm.programming_noise(np.full(100_000, target), g_max, _rng(1))
                assert draws.std() == pytest.approx(expected, rel=0.02)
                assert draws.mean() == pytest.approx(target, abs=4 * expected / math.sqrt(1e5))


def test_programming_noise_non_negative_and_reproducible():
    target = np.zeros(10_000)
    g = pcm.programming_noise(target, 25.0, _rng(3))
    assert g.min() == 0.0 and (g > 0).mean() == pytest.approx(0.5, abs=0.03)
    np.testing.assert_array_equal(g, pcm.programming_noise(target, 25.0, _rng(3)))
    assert not np.array_equal(g, pcm.programming_noise(target, 25.0, _rng(4)))


def test_drift_exponent_clipping_ranges():
    g_max = 25.0
    g = np.array([0.0, 1e-9, 0.01, 0.1, 0.5, 1.0]) * g_max
    mu, sigma = pcm.drift_exponent_stats(g, g_max)
    assert np.all((mu >= 0.049) & (mu <= 0.1)) and np.all((sigma >= 0.008) & (sigma <= 0.045))
    assert mu[0] == mu[1] == 0.1 and sigma[0] == sigma[1] == 0.045  # low g: both saturate at the top
    assert mu[-1] == 0.049 and sigma[-1] == 0.008  # g = 1: ln g = 0, both at the floor
    assert mu[3] == pytest.approx(-0.0155 * math.log(0.1) + 0.0244)  # 0.0601, inside the clip range
    assert sigma[3] == pytest.approx(-0.0125 * math.log(0.1) - 0.0059)  # 0.0229
    assert sigma[2] == 0.045  # g = 0.01 would give 0.0517: clipped
    nu = pcm.drift_exponents(np.full(100_000, 0.1 * g_max), g_max, _rng(5))
    assert np.all(nu >= 0)
    assert nu.mean() == pytest.approx(mu[3], rel=0.02)  # σ_ν/μ_ν small here, so |·| barely biases the mean


def test_drift_starts_at_g_prog_and_decays_monotonically():
    g_prog = pcm.programming_noise(np.linspace(0, 25, 200), 25.0, _rng(6))
    nu = pcm.drift_exponents(g_prog, 25.0, _rng(7))
    np.testing.assert_array_equal(pcm.drifted(g_prog, nu, 0.0), g_prog)
    times = [0.0, 1.0, 3600.0, 86400.0, 3.15e7]
    gs = np.stack([pcm.drifted(g_prog, nu, t) for t in times])
    assert np.all(np.diff(gs, axis=0) <= 0) and np.all(gs >= 0)
    # A single exponent by hand: G·((t + t0)/t0)^-ν.
    assert pcm.drifted(10.0, 0.05, 80.0, t0_s=20.0) == pytest.approx(10.0 * 5.0**-0.05)


def test_one_over_f_noise_statistics_and_units():
    g_max, t = 25.0, 3600.0
    g_prog = np.full(100_000, 12.5)
    g_t = pcm.drifted(g_prog, 0.06, t)
    q_s = min(0.0088 / 0.5**0.65, 0.2)
    expected = g_t[0] * q_s * math.sqrt(math.log((t + 20.0 + 250e-9) / (2 * 250e-9)))  # t_read in seconds
    assert pcm.one_over_f_std_us(g_prog[:1], g_t[:1], g_max, t)[0] == pytest.approx(expected)
    noisy = pcm.one_over_f_noise(g_prog, g_t, g_max, t, _rng(8))
    assert (noisy - g_t).std() == pytest.approx(expected, rel=0.02)
    np.testing.assert_array_equal(noisy, pcm.one_over_f_noise(g_prog, g_t, g_max, t, _rng(8)))
    # Tiny conductances: Q_s saturates at 0.2 and the clip keeps conductances non-negative.
    saturated = 0.2 * math.sqrt(math.log((t + 20 + 250e-9) / 5e-7))
    assert pcm.one_over_f_std_us(0.0, 1.0, g_max, t)[()] == pytest.approx(saturated)
    small = pcm.one_over_f_noise(np.zeros(1000), np.full(1000, 0.01), g_max, t, _rng(9))
    assert small.min() >= 0.0
    np.testing.assert_array_equal(pcm.one_over_f_noise(g_prog, g_t, g_max, t, _rng(8), scale=0.0), g_t)


def test_drift_compensation_restores_mean_response():
    rng = _rng(10)
    g_pos = pcm.programming_noise(rng.uniform(0, 25, size=(64, 16)), 25.0, rng)
    g_neg = pcm.programming_noise(rng.uniform(0, 25, size=(64, 16)), 25.0, rng)
    nu_pos, nu_neg = pcm.drift_exponents(g_pos, 25.0, rng), pcm.drift_exponents(g_neg, 25.0, rng)
    probe = np.eye(64) * 127  # one-hot, full-scale pulses: the documented probe
    t = 86400.0
    r0 = probe @ (g_pos - g_neg)
    rt = probe @ (pcm.drifted(g_pos, nu_pos, t) - pcm.drifted(g_neg, nu_neg, t))
    alpha = pcm.drift_compensation_gain(r0, rt)
    assert alpha > 1  # conductances decayed
    assert np.abs(alpha * rt).mean() == pytest.approx(np.abs(r0).mean(), rel=1e-12)
    # With one common exponent, compensation is exact element by element.
    rt_common = probe @ (pcm.drifted(g_pos, 0.05, t) - pcm.drifted(g_neg, 0.05, t))
    np.testing.assert_allclose(pcm.drift_compensation_gain(r0, rt_common) * rt_common, r0, rtol=1e-10, atol=1e-9)
    # torch responses work too; an all-zero tile keeps unit gain.
    assert pcm.drift_compensation_gain(torch.from_numpy(r0), torch.from_numpy(rt)) == pytest.approx(alpha)
    assert pcm.drift_compensation_gain(np.zeros(3), np.zeros(3)) == 1.0


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: pcm.programming_noise(np.array([-1.0]), 25.0, _rng()), "g_target_us"),
        (lambda: pcm.programming_noise(np.array([np.nan]), 25.0, _rng()), "g_target_us"),
        (lambda: pcm.programming_noise(np.ones(2), 0.0, _rng()), "g_max_us"),
        (lambda: pcm.programming_noise(np.ones(2), 25.0, 0), "rng"),
        (lambda: pcm.drift_exponents(np.ones(2), 25.0, np.random.RandomState(0)), "rng"),
        (lambda: pcm.drifted(np.ones(2), -0.1, 1.0), "nu"),
        (lambda: pcm.drifted(np.ones(2), 0.1, -1.0), "t_s"),
        (lambda: pcm.drifted(np.ones(2), 0.1, 1.0, t0_s=0.0), "t0_s"),
        (lambda: pcm.one_over_f_noise(np.ones(2), np.ones(2), 25.0, 1.0, _rng(), t_read_ns=0.0), "t_read_ns"),
        (lambda: pcm.one_over_f_noise(np.ones(2), np.ones(2), 25.0, 1.0, _rng(), scale=-1.0), "scale"),
        (lambda: pcm.drift_compensation_gain(np.ones(2), np.zeros(2)), "response_at_t"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        call()
