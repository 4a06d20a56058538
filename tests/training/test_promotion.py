"""The promotion rule (decide) and the metric direction it relies on (better)."""

from __future__ import annotations

import pytest

from mlplatform.training.promotion import decide
from mlplatform.training.scoring import PRIMARY_METRIC, better, score


def test_promotes_when_there_is_no_production():
    decision = decide("accuracy", 0.5, None, 0.0, candidate_version=1, production_version=None)
    assert decision.promote is True
    assert "no production" in decision.reason
    assert decision.as_dict() == {
        "promote": True,
        "reason": decision.reason,
        "metric": "accuracy",
        "candidate_score": 0.5,
        "production_score": None,
        "margin": 0.0,
    }


def test_keeps_when_candidate_is_already_production():
    decision = decide("accuracy", 0.99, 0.5, 0.0, candidate_version=3, production_version=3)
    assert decision.promote is False
    assert "already production" in decision.reason


def test_promotes_when_production_cannot_score():
    decision = decide("accuracy", 0.1, None, 0.05, candidate_version=4, production_version=2)
    assert decision.promote is True
    assert "cannot score" in decision.reason


@pytest.mark.parametrize(
    "metric, candidate, production, margin, promote",
    [
        ("accuracy", 0.9, 0.9, 0.0, False),  # equal scores keep production
        ("accuracy", 0.91, 0.9, 0.0, True),
        ("accuracy", 0.89, 0.9, 0.0, False),
        ("accuracy", 0.75, 0.5, 0.25, False),  # better by exactly the margin is not enough
        ("accuracy", 0.76, 0.5, 0.25, True),
        ("accuracy", 0.93, 0.9, 0.05, False),  # better, but not by the margin
        ("rmse", 10.0, 10.0, 0.0, False),
        ("rmse", 9.0, 10.0, 0.0, True),  # lower is better
        ("rmse", 11.0, 10.0, 0.0, False),
        ("rmse", 9.5, 10.0, 0.5, False),
        ("rmse", 9.4, 10.0, 0.5, True),
        ("rmse", 9.6, 10.0, 0.5, False),
    ],
)
def test_promotes_only_when_better_by_more_than_margin(metric, candidate, production, margin, promote):
    decision = decide(metric, candidate, production, margin, candidate_version=2, production_version=1)
    assert decision.promote is promote
    assert ("does not beat" in decision.reason) is not promote
    assert (decision.candidate_score, decision.production_score, decision.margin) == (candidate, production, margin)


@pytest.mark.parametrize(
    "metric, candidate, production, margin",
    [("accuracy", 46 / 50, 45 / 50, 0.02), ("accuracy", 0.72, 0.70, 0.02), ("rmse", 0.28, 0.30, 0.02)],
)
def test_better_by_exactly_the_margin_keeps_production_despite_float_rounding(metric, candidate, production, margin):
    # 46/50 - 45/50 is 0.020000000000000018 in floating point: one more validation row right out of fifty is
    # exactly the margin, not more, so the candidate must not be promoted.
    decision = decide(metric, candidate, production, margin, candidate_version=2, production_version=1)
    assert decision.promote is False


@pytest.mark.parametrize("margin", [-0.01, -1.0])
def test_negative_margin_raises(margin):
    with pytest.raises(ValueError, match="margin must be >= 0"):
        decide("accuracy", 0.9, 0.8, margin, candidate_version=2, production_version=1)


@pytest.mark.parametrize(
    "metric, a, b, expected",
    [
        ("accuracy", 0.8, 0.7, True),
        ("f1_macro", 0.7, 0.8, False),
        ("r2", 0.5, 0.4, True),
        ("rmse", 1.0, 2.0, True),
        ("mae", 2.0, 1.0, False),
        ("rmse", 1.0, 1.0, False),
    ],
)
def test_better_respects_metric_direction(metric, a, b, expected):
    assert better(metric, a, b) is expected


def test_score_gives_the_primary_metric_per_task_type():
    classification = score("classification", [0, 1, 1, 0], [0, 1, 0, 0])
    assert classification == pytest.approx({"accuracy": 0.75, "balanced_accuracy": 0.75, "f1_macro": (0.8 + 2 / 3) / 2})
    regression = score("regression", [1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    assert regression["rmse"] == pytest.approx((4 / 3) ** 0.5)
    assert regression["mae"] == pytest.approx(2 / 3)
    assert PRIMARY_METRIC["classification"] in classification and PRIMARY_METRIC["regression"] in regression
