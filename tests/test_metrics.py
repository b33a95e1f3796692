"""GLUE metrics against values worked out by hand."""

import math

import numpy as np
import pytest

from aimc_runner import metrics, tasks
from aimc_runner.config import TaskName


def logits(classes, num_labels=2):
    """Logits [N, C] whose argmax is `classes` (not one-hot, so the argmax does real work)."""
    out = np.full((len(classes), num_labels), -1.0)
    out[np.arange(len(classes)), classes] = 2.5
    return out + np.linspace(0, 0.1, num_labels)  # same small tilt on every row; it does not change the argmax


def test_cola_matthews_correlation():
    # TP=3 FN=1 TN=1 FP=1: (3*1 - 1*1) / sqrt(4*4*2*2) = 2/8
    got = metrics.compute("cola", logits([1, 1, 1, 0, 0, 1]), [1, 1, 1, 1, 0, 0])
    assert got == {"matthews_correlation": pytest.approx(0.25)}


def test_cola_constant_predictions_give_zero():
    got = metrics.compute("cola", logits([1, 1, 1, 1]), [1, 0, 1, 0])
    assert got == {"matthews_correlation": 0.0}


def test_mrpc_accuracy_and_f1_of_class_one():
    # TP=3 FP=1 FN=1 TN=1: accuracy 4/6; precision = recall = 3/4, so F1 = 3/4
    got = metrics.compute("mrpc", logits([1, 1, 1, 0, 0, 1]), [1, 1, 1, 1, 0, 0])
    assert got == {"accuracy": pytest.approx(4 / 6), "f1": pytest.approx(0.75)}


def test_qqp_accuracy_and_f1():
    # TP=1 FP=1 FN=1 TN=2: accuracy 3/5; F1 = 2*1 / (2*1 + 1 + 1) = 1/2
    got = metrics.compute(TaskName.qqp, logits([0, 1, 0, 1, 0]), [0, 0, 0, 1, 1])
    assert got == {"accuracy": pytest.approx(0.6), "f1": pytest.approx(0.5)}


def test_f1_without_predicted_positives_is_zero():
    got = metrics.compute("qqp", logits([0, 0, 0]), [1, 0, 1])
    assert got == {"accuracy": pytest.approx(1 / 3), "f1": 0.0}


def test_stsb_pearson_and_spearman():
    # Deviations from the means: pred (-1.5, -.5, .5, 1.5), gold (-3, -2, -1, 6):
    # Pearson = 14 / sqrt(5 * 50); the ranks agree exactly, so Spearman = 1.
    pred, gold = np.array([1.0, 2.0, 3.0, 4.0]), [1.0, 2.0, 3.0, 10.0]
    expected = {"pearson": pytest.approx(14 / math.sqrt(250)), "spearman": pytest.approx(1.0)}
    assert metrics.compute("stsb", pred, gold) == expected
    assert metrics.compute("stsb", pred[:, None], gold) == expected  # the regression head's [N, 1]


def test_stsb_constant_predictions_give_nan():
    got = metrics.compute("stsb", np.full(4, 2.5), [1.0, 2.0, 3.0, 4.0])
    assert math.isnan(got["pearson"]) and math.isnan(got["spearman"])


def test_mnli_accuracy_three_classes():
    # 4 of 6 right
    got = metrics.compute("mnli", logits([0, 1, 2, 2, 1, 0], 3), [0, 1, 2, 0, 2, 0])
    assert got == {"accuracy": pytest.approx(4 / 6)}


@pytest.mark.parametrize("name", ["sst2", "qnli", "rte", "wnli"])
def test_accuracy_tasks(name):
    got = metrics.compute(name, logits([1, 0, 0, 1, 1]), [1, 0, 1, 1, 0])
    assert got == {"accuracy": pytest.approx(0.6)}


def test_class_ids_are_accepted_as_predictions():
    assert metrics.compute("sst2", np.array([1, 0, 0, 1]), [1, 0, 1, 1]) == {"accuracy": 0.75}


@pytest.mark.parametrize("name", list(tasks.TASKS))
def test_keys_are_the_specs_metrics_and_values_plain_floats(name):
    spec = tasks.TASKS[name]
    rng = np.random.default_rng(0)
    labels = rng.random(10) * 5 if spec.is_regression else np.arange(10) % spec.num_labels
    preds = rng.random(10) if spec.is_regression else rng.random((10, spec.num_labels))
    got = metrics.compute(spec, preds, labels)
    assert tuple(got) == spec.metrics
    assert all(type(v) is float for v in got.values())


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        metrics.compute("sst2", logits([1, 0, 1]), [1, 0])
    with pytest.raises(ValueError):
        metrics.compute("stsb", np.zeros((3, 2)), [1.0, 2.0, 3.0])
