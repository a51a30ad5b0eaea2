"""Which models a person may see and act on: the team rule, stated once.

Read by the selectors (every list, search, filter and lookup), the services (every write),
the admin and the prediction API:

- admins, and the roles in `TEAM_READ_ALL_ROLES` (viewers by default: compliance reads
  everything), see every model;
- data scientists and approvers see their teams' models (the default team's, when they
  belong to none);
- a service account sees, in the registry, only the models it was granted (`readers`), and
  calls the prediction API for its teams' models and those; of those versions it downloads
  the files of production ones only (`may_download`);
- acting on a model (registering into it, moving, validating, approving, calling a version
  outside production, downloading, changing its rules) takes one of the actor's teams, or
  the admin role.

A model someone may not see does not exist for them: a 404 like a model that never
existed, and absent from every list.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q, QuerySet

from core import audit, roles
from core.errors import ApplicationError
from registry.models import DEFAULT_TEAM, RegisteredModel, Team

PEOPLE_ROLES = frozenset({roles.DATA_SCIENTIST, roles.APPROVER})


def default_team() -> Team:
    try:
        return Team.objects.get(name=DEFAULT_TEAM)
    except Team.DoesNotExist:
        raise RuntimeError("the default team is missing: run `manage.py migrate`") from None


def team_ids(user) -> frozenset[int]:
    """The user's teams, or the default team for a user who belongs to none (cached on the
    user object for the request, like roles)."""
    cached = getattr(user, "_team_ids", None)
    if cached is None:
        if not getattr(user, "pk", None):
            cached = frozenset()
        else:
            cached = frozenset(user.teams.values_list("pk", flat=True)) or frozenset(
                Team.objects.filter(name=DEFAULT_TEAM).values_list("pk", flat=True))
        user._team_ids = cached
    return cached


def remember_teams(user, ids, default_team_id: int | None) -> None:
    """Cache the teams of `user`, read with the user (registry.tokens), as `team_ids` would."""
    user._team_ids = frozenset(ids) or frozenset(
        [default_team_id] if default_team_id is not None else [])


def reads_everything(user) -> bool:
    return roles.has_role(user, roles.ADMIN_ROLES | frozenset(settings.TEAM_READ_ALL_ROLES))


def visible_models(user) -> QuerySet[RegisteredModel]:
    """The models `user` may see in the registry, governance and monitoring."""
    models = RegisteredModel.objects.all()
    if reads_everything(user):
        return models
    scope = Q(pk__in=[])
    if roles.has_role(user, PEOPLE_ROLES):
        scope |= Q(team__in=team_ids(user))
    if roles.has_role(user, {roles.SERVICE}):
        scope |= Q(pk__in=RegisteredModel.readers.through.objects.filter(
            user_id=user.pk).values("registeredmodel_id"))
    return models.filter(scope)


def servable_models(user) -> QuerySet[RegisteredModel]:
    """The models `user` may call through the prediction API."""
    if reads_everything(user):
        return RegisteredModel.objects.all()
    return visible_models(user) | RegisteredModel.objects.filter(team__in=team_ids(user))


def may_download(user, version) -> bool:
    """A service account downloads the files of production versions only: it runs what it
    downloads (registry.client.load_model), and four eyes passed only those; the prediction
    API likewise tells a service that no other version exists. People download any version
    of a model they see."""
    from registry.models import Stage

    return version.stage == Stage.PRODUCTION or roles.has_role(user, roles.READ_ROLES)


def may_act(user, model: RegisteredModel) -> bool:
    return roles.has_role(user, roles.ADMIN_ROLES) or model.team_id in team_ids(user)


def may_set_risk(user, model: RegisteredModel) -> bool:
    """A model's risk tier is set by the approvers and admins of its team (the service
    services.model_risk_set and the admin's button both ask this)."""
    return roles.has_role(user, roles.APPROVE_ROLES) and may_act(user, model)


def require_action(user, model: RegisteredModel, what: str, *, subject=None,
                   attempted: str = "") -> None:
    """Refuse, and audit, `what` on a model of another team (a 403 for someone who may see
    it; the selectors make it a 404 for anyone else)."""
    if not may_act(user, model):
        raise audit.denied(actor=user, subject=subject if subject is not None else model,
                           attempted=attempted or what,
                           message=f"{model.name} belongs to the team {model.team.name}; only "
                           f"its members and admins may {what}.")


def team_for_new_model(user, name: str | None) -> Team:
    """The team a new model goes to: the one named (the actor's, or any for an admin), or
    the actor's only team."""
    mine = team_ids(user)
    if name:
        team = Team.objects.filter(name=name).first()
        if team is None or not (team.pk in mine or roles.has_role(user, roles.ADMIN_ROLES)):
            raise ApplicationError(f"you are not a member of a team named {name!r}",
                                   field="team")
        return team
    if len(mine) != 1:
        raise ApplicationError("you belong to several teams: name the one that owns the model",
                               field="team")
    return Team.objects.get(pk=next(iter(mine)))


def not_found(name: str) -> ApplicationError:
    return ApplicationError(f"no registered model named {name!r}", status_code=404,
                            code="not_found")
