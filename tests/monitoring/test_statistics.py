"""The figures a pass computes (monitoring.statistics), on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest

from monitoring import statistics


def test_a_regressor_given_a_label_as_its_outcome_counts_it_unusable():
    figures = statistics.regression_performance(["3.5", "oops", 4, None], [3.0, 2.0, 5.0, 1.0])
    assert (figures["n"], figures["unusable"]) == (2, 2)
    assert figures["mae"] == pytest.approx(0.75)


def test_auc_takes_the_greater_numeric_class_as_positive():
    actual = [9, 10, 10, 9]
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])  # columns: 9, 10
    figures = statistics.classification_performance(actual, [9, 10, 10, 9], scores)
    assert figures["auc_roc"] == 1.0
