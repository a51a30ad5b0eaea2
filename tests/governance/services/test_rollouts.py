"""Rollouts: starting one is a four-eyes decision (an approver who did not register the
candidate); the candidate comes from staging, validated, beside a production version; a
canary moves through its steps; ending one takes a reason. Each change is audited and tells
the web processes (the serving generation)."""

from __future__ import annotations

import json

import pytest

from core.errors import ApplicationError, Conflict, Forbidden
from core.models import AuditEvent
from governance import services
from governance.models import Rollout, ServingState
from tests import helpers
from tests.helpers import Unchanged

pytestmark = pytest.mark.django_db


@pytest.fixture
def candidate(data_scientist, churn_model):
    """dana's 1.0.0 in production, her 1.1.0 validated in staging."""
    current = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    helpers.force_stage(current, "production")
    staged = helpers.register_direct("churn_prediction", "1.1.0", actor=data_scientist)
    helpers.force_stage(staged, "staging")
    helpers.mark_validated(staged)
    return staged


def _generation():
    return ServingState.objects.get(pk=1).generation


@pytest.mark.parametrize("mode", ["canary", "shadow"])
def test_the_candidates_author_may_not_start_a_rollout_even_as_an_approver(
    candidate, approver, mode
):
    type(candidate).objects.filter(pk=candidate.pk).update(created_by=approver)
    with Unchanged(), pytest.raises(Forbidden, match="Four eyes"):
        services.rollout_start(version=candidate, mode=mode, actor=approver)
    event = AuditEvent.objects.get(action="permission.denied")
    assert (event.actor_name, json.loads(event.after)) == (
        "april", {"attempted": f"rollout.{mode}"})


def test_a_data_scientist_may_not_start_one(candidate, other_data_scientist):
    with Unchanged(), pytest.raises(Forbidden, match="needs the role"):
        services.rollout_start(version=candidate, mode="shadow", actor=other_data_scientist)


@pytest.mark.parametrize("steps", [[50, 10], [0, 50], [10, 10], [], [10.5], [True], [101],
                                   "10,50"])
def test_steps_are_increasing_whole_percentages(candidate, approver, steps):
    with Unchanged(allow_actions=()), pytest.raises(ApplicationError) as refused:
        services.rollout_start(version=candidate, mode="canary", actor=approver, steps=steps)
    assert refused.value.field == "steps"


def test_a_candidate_comes_from_staging_validated_and_one_at_a_time(candidate, approver,
                                                                    data_scientist):
    experiment = helpers.register_direct("churn_prediction", "1.2.0", actor=data_scientist)
    with Unchanged(allow_actions=()), pytest.raises(Conflict) as refused:
        services.rollout_start(version=experiment, mode="shadow", actor=approver)
    assert refused.value.get_codes() == "invalid_candidate"
    helpers.force_stage(experiment, "staging")
    with Unchanged(allow_actions=()), pytest.raises(Conflict) as refused:
        services.rollout_start(version=experiment, mode="shadow", actor=approver)
    assert refused.value.get_codes() == "not_validated"
    services.rollout_start(version=candidate, mode="shadow", actor=approver)
    helpers.mark_validated(experiment)
    with Unchanged(allow_actions=()), pytest.raises(Conflict) as refused:
        services.rollout_start(version=experiment, mode="canary", actor=approver)
    assert refused.value.get_codes() == "rollout_active"


def test_a_canary_moves_through_its_steps_and_ends_with_a_reason(candidate, approver,
                                                                 data_scientist, viewer):
    generation = _generation()
    rollout = services.rollout_start(version=candidate, mode="canary", actor=approver,
                                     steps=[10, 50, 100], reason="try it on a tenth")
    assert (rollout.status, rollout.step, rollout.percent) == ("active", 0, 10)
    assert _generation() == generation + 1
    model = candidate.model
    assert services.rollout_advance(model=model, actor=approver).percent == 50
    assert services.rollout_advance(model=model, actor=approver, percent=75).percent == 75
    assert services.rollout_advance(model=model, actor=approver).percent == 100
    with Unchanged(allow_actions=()), pytest.raises(Conflict) as last:
        services.rollout_advance(model=model, actor=approver)
    assert last.value.get_codes() == "last_step"
    advanced = [(json.loads(e.before), json.loads(e.after)) for e in
                AuditEvent.objects.filter(action="rollout.advanced").order_by("seq")]
    assert advanced == [({"percent": 10}, {"percent": 50}), ({"percent": 50}, {"percent": 75}),
                        ({"percent": 75}, {"percent": 100})]

    with Unchanged(), pytest.raises(Forbidden):
        services.rollout_abort(model=model, actor=viewer, reason="no")
    with Unchanged(allow_actions=()), pytest.raises(ApplicationError) as refused:
        services.rollout_abort(model=model, actor=data_scientist, reason="")
    assert refused.value.field == "reason"
    before = _generation()
    services.rollout_abort(model=model, actor=data_scientist, reason="latency")  # its author may
    assert Rollout.objects.get().status == "aborted"
    assert _generation() == before + 1
    event = AuditEvent.objects.get(action="rollout.aborted")
    assert (event.actor_name, event.reason) == ("dana", "latency")
    with Unchanged(allow_actions=()), pytest.raises(Conflict, match="no active rollout"):
        services.rollout_advance(model=model, actor=approver)


def test_a_shadow_has_no_share_to_change(candidate, approver):
    services.rollout_start(version=candidate, mode="shadow", actor=approver)
    with Unchanged(allow_actions=()), pytest.raises(Conflict) as refused:
        services.rollout_advance(model=candidate.model, actor=approver)
    assert refused.value.get_codes() == "not_a_canary"
