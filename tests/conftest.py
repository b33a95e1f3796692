"""Shared test set-up: never touch the network or the user's cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aimc_runner.circuit.spice import ngspice_available

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FIXTURES = Path(__file__).parent / "fixtures"
GLUE_FIXTURES = FIXTURES / "glue"
CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AIMC_CACHE_DIR", str(tmp_path / "aimc-cache"))


@pytest.fixture(scope="session")
def ngspice():
    """Real ngspice runs: required in CI (which installs it), skipped elsewhere when missing."""
    if not ngspice_available():
        if os.environ.get("CI"):
            pytest.fail("ngspice is required in CI: install the Debian package `ngspice`")
        pytest.skip("ngspice not installed (Debian package `ngspice`)")
