"""Fine-tuning with a content-addressed cache of trained models and exact resume.

A trained model is stored under ``<cache_dir>/<key>/final`` where ``key`` hashes everything that determines the
weights: model, task and its training data (file checksums), training config and seed. Later runs with the same
key (e.g. evaluations under other tiles) load it instead of retraining. Every stored file is listed with its
sha256 in a manifest written last; a folder whose manifest is missing or does not match is treated as absent
(logged, deleted, retrained), never silently used.

Training state is checkpointed every ``train.checkpoint_every_steps`` steps; the batch order is a function of
(seed, epoch) and the RNG state is saved, so an interrupted fine-tune resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding, get_linear_schedule_with_warmup

from .config import RunConfig, TrainMode, WeightScaling
from .atomic import atomic_dir, sha256_file, write_json_atomic

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the stored layout or the training semantics change
FINAL = "final"
CHECKPOINT = "checkpoint"
MANIFEST = "MANIFEST.json"


@dataclass
class TrainOutcome:
    key: Optional[str]  # None when nothing was trained (train=none)
    weights_dir: Optional[Path]
    reused: bool
    steps: int
    resumed_from_step: int
    wall_s: float
    examples_per_s: Optional[float]
    final_loss: Optional[float]


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "value") and hasattr(obj, "name"):  # Enum
        return obj.value
    return obj


def cache_payload(run: RunConfig, train_files: dict[str, str], extra: Optional[dict] = None) -> dict:
    """Everything that determines the trained weights (and nothing that does not, like logging cadence)."""
    train = asdict(run.train)
    train.pop("checkpoint_every_steps")
    if run.train.mode == TrainMode.tile_aware and not run.tile.circuit.irdrop:
        train["mode"] = TrainMode.hwa  # tau = 1: the same training as hwa, so the same cached model
    if train["mode"] != TrainMode.tile_aware:
        train.pop("tau_refresh_steps")
    if run.train.mode not in ANALOG_TRAINING:
        for key in ("noise_std", "quantize_inputs", "quantize_outputs"):
            train.pop(key)
    model = asdict(run.model)
    model.pop("max_position_embeddings")
    payload = {
        "format": CACHE_FORMAT,
        "model": model,
        "task": {"name": run.task.name, "max_train_samples": run.task.max_train_samples, "files": train_files,
                 **({"train_from_dev": run.task.train_from_dev} if run.task.train_from_dev is not None else {})},
        "train": train,
        "seed": run.seed,
    }
    if extra:
        payload["extra"] = extra
    return _jsonable(payload)


ANALOG_TRAINING = (TrainMode.hwa, TrainMode.tile_aware)


def tile_dependencies(run: RunConfig) -> Optional[dict]:
    """The parts of the tile that hardware-aware training depends on (and so the cache key), nothing more.

    hwa: the block size (noise is relative to each block's max|W|) and a non-default weight scaling, plus PWM/ADC
    settings when quantizing;
    tile_aware: also the circuit and conductance range that determine the IR-drop factors tau. Evaluation-only
    effects (read noise, drift, chip seeds) never enter, so one trained model serves every evaluation tile.
    """
    if run.train.mode not in ANALOG_TRAINING:
        return None
    t, tr = run.tile, run.train
    deps: dict = {"rows": t.circuit.rows, "cols": t.circuit.cols}
    if t.circuit.weight_scaling != WeightScaling.tile:  # noise relative to each column's max|W|; τ from its mapping
        deps["weight_scaling"] = t.circuit.weight_scaling.value
    if tr.quantize_inputs or tr.quantize_outputs:
        deps["pwm"] = asdict(t.pwm)
    if tr.quantize_outputs:
        deps["adc"] = asdict(t.adc)
        deps["drive"] = [t.circuit.dv_v, t.circuit.t_slot_ns, t.device.g_min_us, t.device.g_max_us]
    if tr.mode == TrainMode.tile_aware and t.circuit.irdrop:
        c = asdict(t.circuit)
        deps["circuit"] = {k: c[k] for k in ("r_wire_ohm", "adc_sides", "placement", "segments", "idle_rows")}
        deps["g_range_us"] = [t.device.g_min_us, t.device.g_max_us]
    return deps


def cache_key(payload: dict) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def write_manifest(folder: Path, info: dict) -> None:
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}
    write_json_atomic(folder / MANIFEST, {"files": files, **info})


def verify(folder: Path) -> Optional[str]:
    """None if ``folder`` holds a complete, intact manifest-listed set of files; else the reason it does not."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return f"no {MANIFEST} (partial or interrupted write)"
    try:
        listed = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError) as err:
        return f"unreadable {MANIFEST}: {err}"
    for name, digest in listed.items():
        path = folder / name
        if not path.is_file():
            return f"missing {name}"
        if sha256_file(path) != digest:
            return f"checksum mismatch in {name}"
    return None


@contextlib.contextmanager
def _exclusive(lock_path: Path, key: str):
    """An exclusive advisory lock (``flock``; released by the OS if the holder dies), logging any wait."""
    with open(lock_path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another job is training model %s; waiting for it", key)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _discard(folder: Path, reason: str) -> None:
    log.warning("discarding %s: %s; it will be rebuilt", folder, reason)
    shutil.rmtree(folder, ignore_errors=True)


def fit(
    model: torch.nn.Module,
    tokenizer: Any,
    train_set: Any,
    run: RunConfig,
    cache_root: Path,
    *,
    payload: dict,
    load_weights: Callable[[Path], None],
    before_step: Optional[Callable[[torch.nn.Module], None]] = None,
    generators: Optional[dict[str, torch.Generator]] = None,
) -> TrainOutcome:
    """Fine-tune ``model`` on the tokenized ``train_set``, or load the cached result of an identical fine-tune.

    ``load_weights(folder)`` loads a stored ``final`` folder into ``model``; ``before_step(model)`` runs before
    every forward pass in training; ``generators`` (e.g. the hardware-aware training noise) are checkpointed and
    restored with the model so that a resumed fine-tune draws the same noise as an uninterrupted one.
    """
    if run.train.mode == TrainMode.none:
        return TrainOutcome(None, None, False, 0, 0, 0.0, None, None)

    key = cache_key(payload)
    root = cache_root / key
    final = root / FINAL
    t0 = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    # One trainer per key: parallel sweep jobs that share a training configuration wait here, then reuse.
    with _exclusive(root / ".lock", key):
        if final.exists():
            problem = verify(final)
            if problem is None:
                load_weights(final)
                info = json.loads((final / MANIFEST).read_text())
                log.info("reusing fine-tuned model %s (no training)", final)
                return TrainOutcome(key, final, True, info["steps"], 0, time.perf_counter() - t0, None,
                                    info.get("loss"))
            _discard(final, problem)

        write_json_atomic(root / "key.json", payload)
        steps, start, loss, rate = _train_loop(model, tokenizer, train_set, run, root / CHECKPOINT, before_step,
                                               generators or {})
        with atomic_dir(final) as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)  # a complete checkpoint: `model.name_or_path=<folder> train=none` loads
            write_manifest(tmp, {"key": key, "steps": steps, "loss": loss})
    shutil.rmtree(root / CHECKPOINT, ignore_errors=True)
    return TrainOutcome(key, final, False, steps, start, time.perf_counter() - t0, rate, loss)


def _train_loop(model, tokenizer, train_set, run: RunConfig, ckpt_dir: Path, before_step, generators) -> tuple:
    cfg = run.train
    n = len(train_set)
    if n == 0:
        raise ValueError("the training split is empty")
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.learning_rate,
        foreach=True,  # batched over tensors: the default per-tensor loop on CPU is measurably slower
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total)
    collate = DataCollatorWithPadding(tokenizer)

    start = 0
    torch.manual_seed(run.seed)  # dropout
    if ckpt_dir.exists():
        problem = verify(ckpt_dir)
        if problem is None:
            state = torch.load(ckpt_dir / "state.pt", weights_only=False)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            for name, g in generators.items():
                g.set_state(state["generators"][name])
            start = state["step"]
            log.info("resuming fine-tune from step %d/%d (%s)", start, total, ckpt_dir)
        else:
            _discard(ckpt_dir, problem)

    model.train()
    perm, perm_epoch = None, -1
    loss_ema, seen, t0 = None, 0, time.perf_counter()
    bar = tqdm(total=total, initial=start, desc="fine-tune", unit="step", disable=not run.progress, smoothing=0.05)
    for step in range(start, total):
        epoch, pos = divmod(step, steps_per_epoch)
        if epoch != perm_epoch:  # batch order is a pure function of (seed, epoch): exact resume
            g = torch.Generator().manual_seed(run.seed * 100_003 + epoch)
            perm, perm_epoch = torch.randperm(n, generator=g).tolist(), epoch
        idx = perm[pos * cfg.batch_size : (pos + 1) * cfg.batch_size]
        batch = collate([train_set[i] for i in idx])
        if before_step is not None:
            before_step(model)
        out = model(**batch)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

        value = float(out.loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"training loss became {value} at step {step}; lower train.learning_rate")
        loss_ema = value if loss_ema is None else 0.98 * loss_ema + 0.02 * value
        seen += len(idx)
        rate = seen / (time.perf_counter() - t0)
        bar.update(1)
        bar.set_postfix(loss=f"{loss_ema:.4f}", ex_per_s=f"{rate:.0f}", epoch=epoch)
        if (step + 1) % cfg.checkpoint_every_steps == 0 and step + 1 < total:
            _save_checkpoint(ckpt_dir, model, optimizer, scheduler, step + 1, generators)
    bar.close()
    model.eval()
    rate = seen / max(time.perf_counter() - t0, 1e-9) if seen else None
    return total, start, loss_ema, rate


def _save_checkpoint(ckpt_dir: Path, model, optimizer, scheduler, step: int, generators: dict) -> None:
    with atomic_dir(ckpt_dir) as tmp:
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "generators": {name: g.get_state() for name, g in generators.items()},
            "step": step,
        }
        torch.save(state, tmp / "state.pt")
        write_manifest(tmp, {"step": step})


def default_cache_root(cache_dir: Optional[str]) -> Path:
    root = cache_dir or os.environ.get("AIMC_CACHE_DIR") or Path.home() / ".cache" / "aimc-runner"
    return Path(root).expanduser()
