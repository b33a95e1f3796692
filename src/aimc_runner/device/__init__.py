"""PCM devices: weight-to-conductance mapping, ns read noise, and long-term statistics.

- :mod:`.mapping`     weight block <-> differential conductance pairs (spec section 1)
- :mod:`.read_noise`  per-MVM read noise and its exact column-noise sampler (spec section 5)
- :mod:`.pcm`         programming noise, drift, accumulated 1/f noise, drift compensation (spec section 6)
"""

from .mapping import MappedBlock, map_block, read_back
from .pcm import (
    drift_compensation_gain,
    drift_exponents,
    drifted,
    one_over_f_noise,
    programming_noise,
)
from .read_noise import (
    column_noise_std,
    noise_moments,
    read_noise_coefficients,
    sample_column_noise,
    sample_weight_noise_reference,
    sigma_g_us,
)

__all__ = [
    "MappedBlock",
    "map_block",
    "read_back",
    "programming_noise",
    "drift_exponents",
    "drifted",
    "one_over_f_noise",
    "drift_compensation_gain",
    "read_noise_coefficients",
    "sigma_g_us",
    "noise_moments",
    "column_noise_std",
    "sample_column_noise",
    "sample_weight_noise_reference",
]
