"""The regression check's rule: which metrics it compares with production, which way is
worse, how much worse is allowed, and the default policy that the migration left behind.

The check itself runs in tests/governance/services/test_validations.py (real sandbox runs);
here the rule is read through `compare_metrics` under real policy rows, with no sandbox."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from governance.models import Policy
from governance.validation import compare_metrics, regression_flag, worst_drop
from tests import helpers

pytestmark = pytest.mark.django_db


def _rows(candidate: dict, production: dict, policy) -> dict[str, dict]:
    return {row["name"]: row for row in compare_metrics(candidate, production, policy)}


def test_the_default_policy_compares_every_metric_both_declare(policy):
    assert policy.regression_metrics == []
    rows = _rows({"accuracy": 0.85, "precision": 0.736, "recall": 0.40},
                 {"accuracy": 0.84, "precision": 0.807, "recall": 0.39}, policy)
    assert all(row["compared"] for row in rows.values())
    assert rows["precision"] == {
        "name": "precision", "production": 0.807, "candidate": 0.736, "change": -0.071,
        "direction": "higher", "outcome": "worse", "worsening": 0.071, "allowed": 0.02,
        "tolerance": "absolute", "beyond_tolerance": True, "compared": True, "why_not": "",
    }
    assert regression_flag(list(rows.values()))["text"] == (
        "Worse than production beyond tolerance on: precision")


def test_a_score_may_drop_two_points_and_not_more(policy):
    rows = _rows({"a": 0.787, "b": 0.786, "c": 0.9}, {"a": 0.807, "b": 0.807, "c": 0.9}, policy)
    # 0.807 - 0.787 is 0.020000000000000018 in floating point: exactly the tolerance, allowed.
    assert (rows["a"]["outcome"], rows["a"]["beyond_tolerance"]) == ("worse", False)
    assert (rows["b"]["outcome"], rows["b"]["beyond_tolerance"]) == ("worse", True)
    assert (rows["c"]["outcome"], rows["c"]["beyond_tolerance"]) == ("same", False)


@pytest.mark.parametrize("name", ["log_loss", "rmse", "MAE", "val_loss", "mean_squared_error",
                                  "test_rmse", "error_rate"])
def test_a_lower_is_better_metric_that_rises_is_worse(policy, name):
    rows = _rows({name: 0.45, "accuracy": 0.90}, {name: 0.40, "accuracy": 0.90}, policy)
    row = rows[name]
    assert (row["direction"], row["outcome"], row["worsening"]) == ("lower", "worse", 0.05)
    assert row["beyond_tolerance"]
    falling = _rows({name: 0.30}, {name: 0.40}, policy)[name]
    assert (falling["outcome"], falling["beyond_tolerance"]) == ("better", False)


def test_a_metric_outside_zero_to_one_has_a_relative_tolerance(policy):
    rows = _rows({"rmse": 10.2, "mape": 10.3, "calinski_harabasz": 2600.0, "r2": -0.51},
                 {"rmse": 10.0, "mape": 10.0, "calinski_harabasz": 2677.91, "r2": -0.5},
                 policy)
    assert (rows["rmse"]["tolerance"], rows["rmse"]["allowed"]) == ("relative", 0.2)
    assert not rows["rmse"]["beyond_tolerance"]  # +2 % of 10.0
    assert rows["mape"]["beyond_tolerance"]  # +3 %
    assert rows["calinski_harabasz"]["beyond_tolerance"]  # higher is better: -2.9 %
    assert not rows["r2"]["beyond_tolerance"]  # -0.01 of |-0.5|: 2 %


def test_a_production_value_of_zero_takes_the_tolerance_as_absolute(policy):
    rows = _rows({"mae": 0.015, "inertia": 1.5}, {"mae": 0.0, "inertia": 0.0}, policy)
    assert (rows["mae"]["tolerance"], rows["mae"]["beyond_tolerance"]) == ("absolute", False)
    assert (rows["inertia"]["tolerance"], rows["inertia"]["allowed"]) == ("absolute", 0.02)
    assert rows["inertia"]["beyond_tolerance"]


def test_the_tolerance_is_the_policys(strict_policy):
    policy = strict_policy(regression_tolerance=0.1)
    rows = _rows({"precision": 0.736, "rmse": 10.9}, {"precision": 0.807, "rmse": 10.0}, policy)
    assert not rows["precision"]["beyond_tolerance"]
    assert not rows["rmse"]["beyond_tolerance"]
    assert regression_flag(list(rows.values()))["text"] == (
        "Worse on 2 metrics, within tolerance: precision, rmse")


def test_a_metric_only_one_version_declares_is_listed_as_not_compared(policy):
    rows = _rows({"accuracy": 0.9, "lift": 2.0, "note": "text"},
                 {"accuracy": 0.9, "kappa": 0.4, "note": "text"}, policy)
    assert [name for name, row in rows.items() if row["compared"]] == ["accuracy"]
    assert rows["lift"]["why_not"] == "only the candidate declares it"
    assert rows["kappa"]["why_not"] == "only production declares it"
    assert rows["note"]["why_not"] == "not a number on both sides"
    assert (rows["kappa"]["production"], rows["kappa"]["candidate"]) == (0.4, None)


def test_a_policy_that_names_metrics_compares_only_those(strict_policy):
    policy = strict_policy(regression_metrics=["recall", "auc_roc"])
    rows = _rows({"precision": 0.736, "recall": 0.40, "auc_roc": 0.80},
                 {"precision": 0.807, "recall": 0.39, "auc_roc": 0.81}, policy)
    assert [name for name, row in rows.items() if row["compared"]] == ["auc_roc", "recall"]
    precision = rows["precision"]
    assert precision["why_not"] == "the policy names other metrics"
    # Still shown as worse on the page, never as beyond a tolerance it was not judged by.
    assert (precision["outcome"], precision["beyond_tolerance"]) == ("worse", False)
    flag = regression_flag(list(rows.values()))
    assert flag["text"] == "Worse on 1 metric, within tolerance: auc_roc"
    assert worst_drop(list(rows.values()))["name"] == "auc_roc"


def test_a_policy_may_name_more_lower_is_better_metrics(strict_policy):
    policy = strict_policy(lower_is_better=["latency_p99"])
    rows = _rows({"latency_p99": 120.0}, {"latency_p99": 100.0}, policy)
    assert (rows["latency_p99"]["direction"], rows["latency_p99"]["outcome"]) == ("lower",
                                                                                  "worse")


def test_the_migration_turns_the_old_default_list_into_every_shared_metric(
    policy, churn_model, data_scientist
):
    """Rows still holding the list the old default wrote become [] (every shared metric); a
    list someone chose stays."""
    old_default = ["accuracy", "auc_roc", "r2", "mae", "rmse", "silhouette"]
    Policy.objects.filter(pk=policy.pk).update(regression_metrics=old_default)
    reordered = Policy.objects.create(model=churn_model, regression_metrics=old_default[::-1])
    other = helpers.create_model(owner=data_scientist, name="fraud")
    chosen = Policy.objects.create(model=other, regression_metrics=["accuracy"])
    before = _rows({"precision": 0.736}, {"precision": 0.807}, Policy.objects.get(pk=policy.pk))
    assert not before["precision"]["compared"]  # the issue: precision fell unseen

    migration = importlib.import_module(
        "governance.migrations.0019_policy_regression_every_shared_metric")
    migration.every_shared_metric(apps, None)

    assert Policy.objects.get(pk=policy.pk).regression_metrics == []
    assert Policy.objects.get(pk=reordered.pk).regression_metrics == []
    assert Policy.objects.get(pk=chosen.pk).regression_metrics == ["accuracy"]
    after = _rows({"precision": 0.736}, {"precision": 0.807}, Policy.objects.get(pk=policy.pk))
    assert after["precision"]["compared"] and after["precision"]["beyond_tolerance"]
