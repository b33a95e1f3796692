"""Hydra's basic sweeper, checked first: every job of a sweep is composed and range-checked before anything runs
or is written, so a bad value in job 400 fails the sweep at once and leaves no folder behind."""

from __future__ import annotations

import logging
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import CompactHydraException
from omegaconf import OmegaConf

log = logging.getLogger(__name__)


class CheckedSweeper(BasicSweeper):
    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides(self._parse_config() + list(arguments))
        jobs = [job for batch in self.split_arguments(overrides, None) for job in batch]
        for job in jobs:
            self.check(job)
        log.info("checked the configs of all %d jobs", len(jobs))
        return super().sweep(arguments)

    def check(self, job: list[str]) -> None:
        cfg = self.hydra_context.config_loader.load_sweep_config(master_config=self.config, sweep_overrides=list(job))
        OmegaConf.set_struct(cfg, False)
        cfg.pop("hydra", None)
        try:
            OmegaConf.to_object(cfg)  # the schema's range and cross-field checks (config.py)
        except Exception as err:
            raise CompactHydraException(f"sweep job [{' '.join(job)}]: {err}") from None
