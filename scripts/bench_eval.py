"""Benchmark a whole-model evaluation: MiniLM on the SST-2 dev set, digital vs the full tile model, in one run.

    GLUE_DIR=../shared/data/glue .venv/bin/python scripts/bench_eval.py [--tile pcm_irdrop] [--threads N]

Times the evaluation of the 872 SST-2 dev sentences with the model digital and then with its 36 analog layers on
``tile=pcm_irdrop`` (8-bit PWM, exact IR-drop, CCO ADC, ns read noise; one chip, programming included), prints
both times, their ratio and the process's peak resident memory; with read noise on, also the time with the
bfloat16 variance GEMM (``tile.device.read_noise_precision=bfloat16``). The weights are the pretrained MiniLM with a
seeded random head: speed does not depend on the fine-tune. Target (issue 4): ratio <= 2, peak RSS <= 2 GB.
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from dataclasses import replace

import numba
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from aimc_runner import analog, calibration, evaluate, models, tasks
from aimc_runner.cli import CONF_DIR
from aimc_runner.config import NoisePrecision, register_configs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tile", default="pcm_irdrop")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        numba.set_num_threads(args.threads)

    register_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        run = OmegaConf.to_object(compose("config", overrides=["task=sst2", f"tile={args.tile}", "train=none",
                                                                 "eval.seeds=1", "progress=false"]))
    spec = tasks.TASKS["sst2"]
    data = tasks.load(run.task, need_train=False)
    loaded = models.load(run.model, spec.num_labels, seed=0)
    model, tok = loaded.model, loaded.tokenizer
    dev = {"dev": tasks.tokenize(data.eval["dev"], tok, run.model.max_seq_length)}

    evaluate.evaluate(model, tok, {"dev": dev["dev"].select(range(64))}, "sst2", args.batch_size, progress=False)
    t0 = time.perf_counter()
    evaluate.evaluate(model, tok, dev, "sst2", args.batch_size, progress=False)
    t_digital = time.perf_counter() - t0

    names = analog.convert(model, run.tile)
    ranges = calibration.input_ranges(model, dev["dev"], tok, run.tile.pwm, batch_size=32, seed=0)
    analog.set_input_ranges(model, ranges)
    def timed_analog(tile_cfg) -> tuple[float, float]:
        analog.program(model, tile_cfg, 0)  # warm-up: Numba compilation, first allocations
        evaluate.evaluate(model, tok, {"dev": dev["dev"].select(range(64))}, "sst2", args.batch_size, progress=False)
        t0 = time.perf_counter()
        analog.program(model, tile_cfg, 1)
        t_program = time.perf_counter() - t0
        evaluate.evaluate(model, tok, dev, "sst2", args.batch_size, progress=False)
        return time.perf_counter() - t0, t_program

    t_analog, t_program = timed_analog(run.tile)
    bf16 = None
    if run.tile.device.read_noise and run.tile.device.read_noise_precision != NoisePrecision.bfloat16:
        bf16 = timed_analog(replace(run.tile, device=replace(run.tile.device,
                                                             read_noise_precision=NoisePrecision.bfloat16)))

    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"MiniLM (6 layers, {len(names)} analog layers), SST-2 dev ({len(dev['dev'])} sentences), "
          f"batch {args.batch_size}, torch threads {torch.get_num_threads()}, numba threads {numba.get_num_threads()}, "
          f"CPU {platform.processor() or platform.machine()}, bf16 GEMM in hardware: {_bf16_hardware()}")
    print(f"digital evaluation                {t_digital:8.2f} s")
    print(f"tile={args.tile} evaluation   {t_analog:8.2f} s  (programming {t_program:.2f} s of it)")
    print(f"ratio analog / digital            {t_analog / t_digital:8.2f}x")
    if bf16 is not None:
        print(f"  with read_noise_precision=bfloat16  {bf16[0]:8.2f} s  ratio {bf16[0] / t_digital:.2f}x")
    print(f"peak resident memory              {peak_gb:8.2f} GB")


def _bf16_hardware() -> str:
    try:
        return str(bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()))
    except (AttributeError, RuntimeError):
        return "unknown"


if __name__ == "__main__":
    main()
