"""The official GLUE metrics, computed locally (scikit-learn, scipy) so that evaluation needs no download.

Which metrics a task reports is ``TaskSpec.metrics``: CoLA Matthews correlation; STS-B Pearson and Spearman
correlation; MRPC and QQP accuracy and F1 of the positive class (1: equivalent / duplicate); every other task
accuracy. MNLI's two dev splits are scored separately: the caller calls ``compute`` once per split.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from aimc_runner.tasks import TaskSpec, get_spec


def compute(task, predictions, labels) -> dict[str, float]:
    """Score predictions against labels with the task's GLUE metrics.

    Parameters
    ----------
    task : str, TaskName or TaskSpec
    predictions : array_like
        Classification: logits ``[N, C]`` (the class is their argmax), or class ids ``[N]``.
        STS-B: predicted scores ``[N]`` or ``[N, 1]``.
    labels : array_like
        ``[N]`` class ids, or gold scores for STS-B.

    Returns
    -------
    dict of str to float
        ``{metric: value}`` for each name in ``spec.metrics``, as plain Python floats.

    Notes
    -----
    Degenerate inputs: with constant predictions (or labels) the Matthews correlation is 0.0, as scikit-learn
    defines it; F1 with no predicted positives is 0.0. Pearson and Spearman correlations are undefined for a
    constant input and are returned as ``nan`` (a real signal, e.g. a collapsed regression head, that 0.0 would
    hide); ``json.dump`` writes it as ``NaN``.
    """
    spec = get_spec(task)
    y_true = np.asarray(labels)
    p = np.asarray(predictions)
    if spec.is_regression:
        y_pred = p[:, 0] if p.ndim == 2 and p.shape[1] == 1 else p
        if y_pred.ndim != 1:
            raise ValueError(f"{spec.name}: predictions must be [N] or [N, 1] scores, got shape {p.shape}")
    else:
        y_pred = p.argmax(axis=-1) if p.ndim == 2 else p
    if y_pred.shape != y_true.shape:
        raise ValueError(f"{spec.name}: {y_pred.shape[0]} predictions for labels of shape {y_true.shape}")

    out = {}
    for name in spec.metrics:
        if name == "accuracy":
            out[name] = accuracy_score(y_true, y_pred)
        elif name == "f1":
            out[name] = f1_score(y_true, y_pred, pos_label=1, zero_division=0.0)
        elif name == "matthews_correlation":
            out[name] = matthews_corrcoef(y_true, y_pred)
        elif name in ("pearson", "spearman"):
            corr = stats.pearsonr if name == "pearson" else stats.spearmanr
            with warnings.catch_warnings():
                # A constant input gives nan, documented above; scipy's warning would only repeat it.
                warnings.simplefilter("ignore", stats.ConstantInputWarning)
                out[name] = corr(y_pred.astype(np.float64), y_true.astype(np.float64))[0]
        else:
            raise ValueError(f"no implementation for metric {name!r}")
    return {k: float(v) for k, v in out.items()}
