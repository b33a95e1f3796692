"""PCM read noise at ns timescales and the exact column-noise sampler (spec section 5)."""

import numpy as np
import pytest
import torch

from aimc_runner.device.read_noise import (
    column_noise_std,
    noise_moments,
    read_noise_coefficients,
    sample_column_noise,
    sample_weight_noise_reference,
    sigma_g_us,
)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_polynomial_values_quoted_in_the_spec():
    a, b = read_noise_coefficients(np.array([1.0, 127.0]))
    assert a[0] == pytest.approx(0.02578764) and b[0] == pytest.approx(0.117763144)  # "2.6 % + 0.12 µS"
    assert a[1] == pytest.approx(0.01091, abs=1e-5) and b[1] == pytest.approx(0.04852, abs=1e-5)  # "1.1 % + 0.05"
    # Torch and numpy agree; shorter reads are noisier.
    t = torch.tensor([0.01, 0.5, 1.0, 10.0, 127.0], dtype=torch.float64)
    at, bt = read_noise_coefficients(t)
    an, bn = read_noise_coefficients(t.numpy())
    np.testing.assert_allclose(at.numpy(), an, rtol=1e-14)
    np.testing.assert_allclose(bt.numpy(), bn, rtol=1e-14)
    assert np.all(np.diff(an) < 0) and np.all(np.diff(bn) < 0)


def test_zero_pulse_length_gives_zero_noise_without_nan():
    a, b = read_noise_coefficients(torch.tensor([0.0, 1.0]))
    assert a[0] == 0 and b[0] == 0 and torch.all(torch.isfinite(a))
    c = torch.zeros(3, 4)
    std = column_noise_std(c, None, torch.full((4, 2), 10.0), torch.zeros(3))
    assert torch.all(std == 0)
    # A batch mixing silent and driven tokens: finite, zero only for the silent one.
    c = torch.tensor([[0.0, 0.0], [0.2, -0.4]])
    noise = sample_column_noise(c, None, torch.ones(2, 3), torch.tensor([0.0, 1.5]), _gen(0))
    assert torch.all(torch.isfinite(noise)) and torch.all(noise[0] == 0) and torch.all(noise[1] != 0)
    # Gradients through t̄ stay finite too (no -inf from log10(0) in the discarded branch).
    t = torch.tensor([0.0, 2.0], requires_grad=True)
    sum(read_noise_coefficients(t)).sum().backward()
    assert torch.all(torch.isfinite(t.grad))


@pytest.mark.parametrize("t_ns", [1.0, 10.0, 127.0])
@pytest.mark.parametrize("g_us", [0.0, 5.0, 25.0])
def test_sampled_std_matches_polynomial(t_ns, g_us):
    # One weight, unit drive, no IR-drop: the column noise is the weight's own noise.
    n = 100_000
    c = torch.ones(n, 1, dtype=torch.float64)
    noise = sample_column_noise(c, None, torch.tensor([[g_us]], dtype=torch.float64), t_ns, _gen(int(t_ns)))
    expected = float(sigma_g_us(g_us, t_ns))
    assert noise.std().item() == pytest.approx(expected, rel=0.02)
    assert abs(noise.mean().item()) < 4 * expected / np.sqrt(n)
    # The per-weight reference sampler draws the same distribution.
    ref = sample_weight_noise_reference(np.ones((20_000, 1)), None, np.array([[g_us]]), t_ns, np.random.default_rng(1))
    assert ref.std() == pytest.approx(expected, rel=0.03)


def _small_tile(seed, rows=6, cols=4, tokens=3):
    rng = np.random.default_rng(seed)
    g_net = rng.uniform(-25, 25, size=(rows, cols))
    g_net[0, 0] = 0.0  # a zero weight still carries the additive b term
    tau = rng.uniform(0.7, 1.0, size=(rows, cols))
    n = rng.integers(-127, 128, size=(tokens, rows))
    c = 0.2 * 1.0 * n  # dv·t_slot·n, V·ns
    t_mean = np.abs(n).mean(axis=1) * 1.0  # ns
    return c, tau, g_net, t_mean


def test_gemm_variance_equals_brute_force_sum():
    c, tau, g_net, t_mean = _small_tile(0)
    std = column_noise_std(*(torch.from_numpy(v) for v in (c, tau, g_net, t_mean)))
    brute = np.empty((c.shape[0], g_net.shape[1]))
    for k in range(c.shape[0]):
        for j in range(g_net.shape[1]):
            terms = [(c[k, i] * tau[i, j] * sigma_g_us(g_net[i, j], t_mean[k])) ** 2 for i in range(c.shape[1])]
            brute[k, j] = sum(terms)
    np.testing.assert_allclose(std.numpy() ** 2, brute, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bfloat16_variance_gemm_is_within_its_stated_bound(seed):
    # A full 512-row tile with 8-bit drives, IR-drop factors and conductances over the whole range, against the
    # float64 products: std within 0.3 % (module docstring), and not exactly float32 (the bf16 path really ran).
    c, tau, g_net, t_mean = _small_tile(seed, tokens=64, rows=512, cols=96)
    c64, tau64, g64, t64 = (torch.from_numpy(v) for v in (c, tau, g_net, t_mean))
    exact = column_noise_std(c64, tau64, g64, t64)
    c32, t32 = c64.float(), t64.float()
    fast = column_noise_std(c32, None, None, t32, moments=noise_moments(tau64.float(), g64.float(), torch.bfloat16))
    assert fast.dtype == torch.float32
    rel = (fast.double() - exact).abs() / exact
    assert float(rel.max()) < 3e-3
    assert float(rel.max()) > 1e-6  # a float32 GEMM would be ~1e-7
    # Silent tokens stay exactly zero.
    zero = column_noise_std(torch.zeros(2, 512), None, None, torch.zeros(2),
                            moments=noise_moments(tau64.float(), g64.float(), torch.bfloat16))
    assert torch.all(zero == 0)


def test_gemm_sampler_matches_per_token_matrix_draws_empirically():
    c, tau, g_net, t_mean = _small_tile(1, tokens=2)
    reps = 20_000
    c_rep, t_rep = np.repeat(c, reps, axis=0), np.repeat(t_mean, reps)  # token k repeated
    ref = sample_weight_noise_reference(c_rep, tau, g_net, t_rep, np.random.default_rng(2), scale=0.5)
    fast = sample_column_noise(
        *(torch.from_numpy(v) for v in (c_rep, tau, g_net, t_rep)), _gen(3), scale=0.5
    ).numpy()
    std = 0.5 * column_noise_std(*(torch.from_numpy(v) for v in (c, tau, g_net, t_mean))).numpy()
    for k in range(c.shape[0]):
        sl = slice(k * reps, (k + 1) * reps)
        np.testing.assert_allclose(ref[sl].std(axis=0), std[k], rtol=0.03)
        np.testing.assert_allclose(fast[sl].std(axis=0), std[k], rtol=0.03)


def test_tokens_and_columns_independent():
    n = 100_000
    c = torch.full((n, 2, 3), 0.3)  # [draws, tokens, rows]: identical inputs for both tokens
    g = torch.full((3, 2), 10.0)
    noise = sample_column_noise(c, None, g, torch.full((n, 2), 1.5), _gen(5))  # [draws, tokens, cols]
    flat = noise.reshape(n, 4).T.numpy()
    corr = np.corrcoef(flat)
    off_diag = corr[~np.eye(4, dtype=bool)]
    assert np.abs(off_diag).max() < 0.02  # 1/sqrt(n) ≈ 0.003


def test_seed_reproducible_float32_and_precomputed_moments():
    c, tau, g_net, t_mean = (torch.from_numpy(v).float() for v in _small_tile(2))
    a = sample_column_noise(c, tau, g_net, t_mean, _gen(7))
    b = sample_column_noise(c, tau, g_net, t_mean, _gen(7))
    d = sample_column_noise(c, tau, g_net, t_mean, _gen(8))
    assert a.dtype == torch.float32 and a.shape == (3, 4)
    assert torch.equal(a, b) and not torch.equal(a, d)
    m = noise_moments(tau, g_net)
    assert torch.equal(sample_column_noise(c, None, None, t_mean, _gen(7), moments=m), a)


def test_scale_zero_and_bad_inputs():
    c, g = torch.ones(2, 3), torch.ones(3, 2)
    assert torch.all(sample_column_noise(c, None, g, 1.0, _gen(0), scale=0.0) == 0)
    with pytest.raises(ValueError, match="`t_mean_ns`"):
        column_noise_std(c, None, g, -1.0)
    with pytest.raises(ValueError, match="`t_mean_ns`"):
        column_noise_std(c, None, g, torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="`t_mean_ns`"):
        column_noise_std(c, None, g, torch.ones(3))
    with pytest.raises(ValueError, match="`c`"):
        column_noise_std(torch.ones(2, 4), None, g, 1.0)
    with pytest.raises(ValueError, match="`c`"):
        column_noise_std(torch.ones(2, 3, dtype=torch.int64), None, g, 1.0)
    with pytest.raises(ValueError, match="`scale`"):
        sample_column_noise(c, None, g, 1.0, _gen(0), scale=-1.0)
    with pytest.raises(ValueError, match="`generator`"):
        sample_column_noise(c, None, g, 1.0, 0)
