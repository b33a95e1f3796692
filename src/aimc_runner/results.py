"""The results contract: one ``results.json`` per run, written atomically next to Hydra's ``.hydra/``."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from .atomic import write_json_atomic

SCHEMA_VERSION = 1
RESULTS = "results.json"
PACKAGES = ("aimc-runner", "torch", "transformers", "datasets", "numba", "numpy", "scipy", "scikit-learn",
            "hydra-core", "omegaconf")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_revision() -> dict[str, Any]:
    """SHA of the source tree the package runs from, and whether it had uncommitted changes."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, timeout=10, check=True).stdout.strip() != ""
        return {"sha": sha, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"sha": "unknown", "dirty": None}


def machine() -> dict[str, Any]:
    return {"hostname": platform.node(), "platform": platform.platform(), "cpus": os.cpu_count()}


def existing(out_dir: Path) -> dict | None:
    """The results.json already in ``out_dir``, or None if there is none or it is unreadable.

    results.json is written atomically as a run's last act, so a run that was killed leaves none: whatever is read
    here is a finished run.
    """
    import json

    try:
        return json.loads((Path(out_dir) / RESULTS).read_text())
    except (OSError, ValueError):
        return None


# Settings that change how a run executes, not what it computes.
EXECUTION_ONLY = ("num_threads", "progress", "skip_complete", "cache_dir")


def config_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two recorded configs, ignoring execution-only settings."""
    out = []
    for k in sorted(set(a) | set(b)):
        if not prefix and k in EXECUTION_ONLY:
            continue
        va, vb = a.get(k, "<absent>"), b.get(k, "<absent>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(prefix + k)
    return out


def write(out_dir: Path, record: dict) -> Path:
    path = Path(out_dir) / RESULTS
    write_json_atomic(path, {"schema_version": SCHEMA_VERSION, **record})
    return path
