"""How many threads one run may use, from the sweep launcher that started it (no oversubscribed cores)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Optional


def job_threads(launcher: Mapping[str, Any], env: Mapping[str, str] = os.environ,
                cpu_count: Optional[int] = None) -> Optional[int]:
    """Threads for torch and numba in one run: SLURM's CPUs per task, submitit's ``cpus_per_task``, or the cores
    divided among joblib's parallel jobs; None under the serial launcher (the libraries' defaults)."""
    cpu_count = cpu_count or os.cpu_count() or 1
    if env.get("SLURM_CPUS_PER_TASK"):
        return max(1, int(env["SLURM_CPUS_PER_TASK"]))
    target = str(launcher.get("_target_", "")).lower()
    if "submitit" in target and launcher.get("cpus_per_task"):
        return max(1, int(launcher["cpus_per_task"]))
    if "joblib" in target:
        n_jobs = launcher.get("n_jobs") or -1
        if n_jobs < 0:  # joblib: -1 all cores, -2 all but one, ...
            n_jobs = max(1, cpu_count + 1 + n_jobs)
        return max(1, cpu_count // n_jobs)
    return None
