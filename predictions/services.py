"""Answering predictions, recording ground truth, and making service tokens."""

from __future__ import annotations

import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction

from core import audit, roles
from core.errors import ApplicationError, Conflict, Forbidden
from core.limits import is_finite_number
from predictions import logs, selectors
from predictions.auth import TOKEN_PREFIX, digest
from predictions.inputs import InputError, parse_mlflow, parse_rest, parse_v2
from predictions.models import ApiToken, ErrorKind, Feedback, RateLimit, Route
from predictions.serving import (
    NotServable,
    SandboxedModelFailed,
    Target,
    answer_in_sandbox,
    models,
    routes,
    unavailable,
)
from registry import access
from registry.models import RegisteredModel

logger = logging.getLogger(__name__)
_shadows = ThreadPoolExecutor(max_workers=2, thread_name_prefix="shadow")
_pending_shadows: set = set()
MAX_PENDING_SHADOWS = 64
FEEDBACK_ANY_REQUEST_ROLES = roles.REGISTER_ROLES  # data scientists and admins


class ModelFailed(Exception):
    """The model raised while predicting: not the caller's fault (a 500)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class Answer:
    model: str
    version: str
    route: str
    predictions: np.ndarray
    probabilities: np.ndarray | None
    request_id: str
    rows: int


OUTPUTS = ("predict", "predict_proba")


def _check_outputs(outputs, has_probabilities: bool) -> None:
    if outputs is None:
        return
    available = OUTPUTS if has_probabilities else OUTPUTS[:1]
    unknown = [name for name in outputs if name not in available]
    if unknown:
        raise InputError(f"unknown output {unknown[0]!r}; this model has "
                         f"{', '.join(available)}", status=400, field="outputs")


def _predict(target: Target, matrix, outputs=None, *, trusted: bool = True):
    """In this process for a version four eyes let serve; in the sandbox for any other."""
    if not trusted:
        predictions, probabilities = answer_in_sandbox(target, matrix)
        _check_outputs(outputs, probabilities is not None)
        return predictions, probabilities
    loaded = models.get(target)
    _check_outputs(outputs, loaded.has_probabilities)
    predictions, probabilities = loaded.predict_with_probabilities(matrix)
    return np.asarray(predictions), probabilities


def predict(*, model_name: str, payload, user, request_id: str, protocol: str = "rest",
            version: str | None = None, routing_key: str = "", booleans: bool = True,
            outputs: list[str] | None = None) -> Answer:
    """Answer one request: route it, check its rows, predict, log; shadow off the path."""
    started = time.perf_counter()
    parse = {"v2": parse_v2, "mlflow": parse_mlflow}.get(protocol, parse_rest)
    require_servable(user, model_name)
    shadow = None
    trusted = True
    if version is None:
        route = routes.route(model_name)
        target, how, shadow = route.choose(routing_key)
        if target is None:
            raise NotServable(f"{model_name} has no production version", status=404)
        model_id = route.model_id
    else:
        model_id, target, trusted = named_target(model_name, version, user)
        how = Route.DIRECT
    def failed(kind: str, status: int, message: str) -> None:
        logs.record_error(request_id=request_id, model_id=model_id,
                          version_id=target.version_id, kind=kind, status_code=status,
                          message=message, user=user, protocol=protocol)

    if target.integrity_failed:
        error = unavailable(f"{model_name} {target.version}")
        failed(ErrorKind.FAILED, error.status, error.message)
        raise error
    try:
        matrix = parse(payload, target.signature, settings.PREDICTION_MAX_ROWS, booleans)
    except InputError as exc:
        failed(ErrorKind.REJECTED, exc.status, exc.message)
        raise
    # Only the model's own exceptions below count as its failures (the error rate).
    try:
        predictions, probabilities = _predict(target, matrix, outputs, trusted=trusted)
    except InputError as exc:  # an output name the model does not have
        failed(ErrorKind.REJECTED, exc.status, exc.message)
        raise
    except NotServable as exc:
        failed(ErrorKind.FAILED, exc.status, exc.message)
        raise
    except SandboxedModelFailed as exc:
        failed(ErrorKind.FAILED, 500, f"{exc} (in the sandbox)")
        raise ModelFailed(f"{model_name} {target.version} could not score these rows "
                          f"({exc}); request id {request_id}") from None
    except Exception as exc:
        # The model itself raised: the caller gets a 500 with the request id, the operator
        # the traceback, and monitoring an error to count.
        logger.exception("%s %s failed on request %s", model_name, target.version, request_id)
        failed(ErrorKind.FAILED, 500, f"{type(exc).__name__}: {exc}")
        raise ModelFailed(f"{model_name} {target.version} could not score these rows "
                          f"({type(exc).__name__}); request id {request_id}") from None
    latency_ms = (time.perf_counter() - started) * 1000
    logs.record(request_id=request_id, model_id=model_id, version_id=target.version_id,
                route=how, user=user, protocol=protocol, matrix=matrix,
                predictions=predictions, probabilities=probabilities, latency_ms=latency_ms,
                routing_key=routing_key)
    if shadow is not None:
        if len(_pending_shadows) >= MAX_PENDING_SHADOWS:
            # A slow candidate must not pile requests up in memory: this one goes unshadowed.
            logger.warning("shadow %s is %d requests behind; %s not shadowed", shadow.version,
                           len(_pending_shadows), request_id)
        else:
            future = _shadows.submit(_shadow, shadow, model_id, matrix, request_id, user,
                                     protocol, routing_key)
            _pending_shadows.add(future)
            future.add_done_callback(_pending_shadows.discard)
    return Answer(model_name, target.version, how, predictions, probabilities, request_id,
                  len(matrix))


def named_target(model_name: str, version: str, user) -> tuple[int, Target, bool]:
    """A version called by number: production for every caller, others only for the people
    who assess candidates. The flag says whether four eyes let it serve (production, or the
    candidate of an active rollout): only those are loaded in this process."""
    require_servable(user, model_name)
    model_id, target, stage = routes.version(model_name, version)
    if stage != "production" and not roles.has_role(user, roles.PREDICT_ANY_VERSION_ROLES):
        # Versions outside production are the data scientists' business: to anyone else
        # they do not exist (a 403 would say that an unreleased version does).
        raise NotServable(f"{model_name} has no version {version!r} in production",
                          status=404)
    if stage != "production":
        model = RegisteredModel.objects.select_related("team").get(pk=model_id)
        access.require_action(user, model, "call its versions outside production")
    trusted = stage == "production"
    if not trusted:
        candidate = routes.route(model_name).candidate
        trusted = candidate is not None and candidate.version_id == target.version_id
    return model_id, target, trusted


def serving_target(model_name: str, version: str | None, user) -> Target:
    """What answers `model_name` (its production version), or the version named."""
    if version is not None:
        return named_target(model_name, version, user)[1]
    require_servable(user, model_name)
    target = routes.route(model_name).production
    if target is None:
        raise NotServable(f"{model_name} has no production version", status=404)
    return target


# --- what the Open Inference Protocol's model metadata says ------------------------------------

# An answer's tensors by numpy kind: the datatypes `infer` answers with (predictions.oip).
KIND_DATATYPES = {"b": "BOOL", "i": "INT64", "u": "INT64", "f": "FP64"}


def datatype_of(kind: str) -> str:
    return KIND_DATATYPES.get(kind, "BYTES")


def _predict_kind(loaded) -> str | None:
    """What `predict` answers, from the loaded model where it says (None: ask the model)."""
    if loaded.framework == "sklearn":
        from sklearn.base import is_clusterer, is_regressor

        classes = getattr(loaded.estimator, "classes_", None)
        if classes is not None:
            return np.asarray(classes).dtype.kind
        if is_regressor(loaded.estimator):
            return "f"
        if is_clusterer(loaded.estimator):
            return "i"
    if loaded.framework == "onnx":
        declared = loaded.estimator.get_outputs()[0].type  # e.g. "tensor(int64)"
        for words, kind in (("string", "O"), ("bool", "b"), ("uint", "u"), ("int", "i"),
                            ("float", "f"), ("double", "f")):
            if words in declared:
                return kind
    return None


def _probe(target: Target, answer) -> tuple[np.ndarray, np.ndarray | None] | None:
    """The model's answer to one row of zeros (numeric models only), or None."""
    if not target.signature.numeric:
        return None
    try:
        return answer(np.zeros((1, len(target.signature.names))))
    except Exception:  # a model that cannot take zeros: the static answer stands
        return None


def model_outputs(model_name: str, version: str | None, user) -> tuple[Target, list[dict]]:
    """The outputs `infer` answers with for the version that answers `model_name` (or the
    version named): `predict`, with the datatype its values have (a classifier's classes,
    a regressor's numbers, a clusterer's labels...), and `predict_proba` where the model has
    it. Worked out once per loaded version."""
    if version is None:
        target, trusted = serving_target(model_name, None, user), True
    else:
        _model_id, target, trusted = named_target(model_name, version, user)
    if trusted:
        loaded = models.get(target)
        cached = getattr(loaded, "oip_outputs", None)
        if cached is not None:
            return target, [dict(o) for o in cached]
        kind, has_probabilities = _predict_kind(loaded), loaded.has_probabilities
        probe = _probe(target, loaded.predict_with_probabilities) if kind is None else None
    else:  # loaded only in the sandbox, as infer does
        probe = _probe(target, lambda rows: answer_in_sandbox(target, rows))
        kind, has_probabilities = None, probe is not None and probe[1] is not None
    shape = [-1]
    if probe is not None:
        predictions = np.asarray(probe[0])
        kind, shape = predictions.dtype.kind, [-1, *predictions.shape[1:]]
    outputs = [{"name": "predict", "datatype": datatype_of(kind or "f"), "shape": shape}]
    if has_probabilities:
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, -1]})
    if trusted:
        loaded.oip_outputs = tuple(outputs)  # kept with the loaded model, evicted with it
    return target, outputs


def reachable_versions(model_name: str, user) -> list[str]:
    """The versions `user` may call by number (production first): production for everyone;
    every version that may serve (its latest validation passed) for those who assess
    candidates and may act on the model."""
    from governance.selectors import servable
    from registry.models import ModelVersion

    require_servable(user, model_name)
    versions = list(ModelVersion.objects.filter(model__name=model_name)
                    .select_related("model__team").order_by("-created_at", "-pk"))
    production = [v.version for v in versions if v.stage == "production"]
    if not versions or not roles.has_role(user, roles.PREDICT_ANY_VERSION_ROLES) \
            or not access.may_act(user, versions[0].model):
        return production
    return production + [v.version for v in versions
                         if v.stage != "production" and servable(v)[0]]


def servable_names(user, *, fresh: bool = False) -> frozenset[str] | None:
    """The model names `user` may call (None: every model), kept on the user object, which
    the prediction API's authentication caches for PREDICTION_AUTH_CACHE_SECONDS: a grant
    shows at once (a miss reads again), a withdrawn one within that time."""
    if access.reads_everything(user):
        return None
    names = None if fresh else getattr(user, "_servable_names", None)
    if names is None:
        names = user._servable_names = frozenset(
            access.servable_models(user).values_list("name", flat=True))
    return names


def require_servable(user, model_name: str) -> None:
    names = servable_names(user)
    if names is not None and model_name not in names:
        names = servable_names(user, fresh=True)
        if model_name not in names:
            raise NotServable(f"no registered model named {model_name!r}", status=404)


def _shadow(target, model_id, matrix, request_id, user, protocol, routing_key) -> None:
    """The candidate's answer to the same rows, logged only (its own thread, after the
    response was computed)."""
    from django.db import connection

    try:
        started = time.perf_counter()
        predictions, probabilities = _predict(target, matrix)
        logs.record(request_id=request_id, model_id=model_id, version_id=target.version_id,
                    route=Route.SHADOW, user=user, protocol=protocol, matrix=matrix,
                    predictions=predictions, probabilities=probabilities,
                    latency_ms=(time.perf_counter() - started) * 1000, routing_key=routing_key)
    except Exception:
        logger.exception("shadow prediction of %s for %s failed", target.version, request_id)
    finally:
        # A pool thread, outside Django's request cycle: a first load may have opened a
        # connection in it, which nothing else would ever close.
        connection.close()


def wait_for_shadows(timeout: float = 30.0) -> None:
    """Wait until every queued shadow prediction has finished (tests, shutdown)."""
    wait(list(_pending_shadows), timeout=timeout)


# --- feedback ---------------------------------------------------------------------------------


def feedback_record(*, request_id: str, items, actor) -> list[Feedback]:
    """Ground truth for rows of an answered request: [{"row": i, "actual": value}, ...]."""
    if not isinstance(items, list) or not items:
        raise ApplicationError("a non-empty list of {\"row\": index, \"actual\": value}",
                               field="feedback")
    logs.flush()  # this process may still hold the request's log in its buffer
    found = next(((log.n_rows, log.caller_id, log.model.name)
                  for log in selectors.logged_requests(request_id)
                  if log.route != Route.SHADOW), None)
    # Ground truth comes from whoever asked (a service learning the outcome), or from data
    # scientists and admins of the model's team; another caller's requests look as if they
    # did not exist.
    names = servable_names(actor)
    if found is None or (found[1] != actor.pk and (
            not roles.has_role(actor, FEEDBACK_ANY_REQUEST_ROLES)
            or not (names is None or found[2] in names))):
        raise ApplicationError(
            f"no answered prediction of yours has request id {request_id!r} (logs are "
            "written within a second of the answer)", status_code=404, code="not_found")
    answered = found[0]
    rows = []
    for position, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"row", "actual"}:
            raise ApplicationError(f"item {position}: expected {{\"row\": index, \"actual\": "
                                   "value}", field=f"feedback[{position}]")
        row = item["row"]
        if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < answered:
            raise ApplicationError(f"item {position}: row must be 0..{answered - 1}",
                                   field=f"feedback[{position}].row")
        actual = item["actual"]
        if not _usable_outcome(actual):
            raise ApplicationError(f"item {position}: actual must be a finite number or a "
                                   "label (text of 1 to 200 characters)",
                                   field=f"feedback[{position}].actual")
        rows.append(Feedback(request_id=request_id, row_index=row, actual=actual,
                             created_by=actor))
    if len({f.row_index for f in rows}) != len(rows):
        raise ApplicationError("a row is given twice", field="feedback")
    try:
        with transaction.atomic():
            return Feedback.objects.bulk_create(rows)
    except IntegrityError:
        raise Conflict("feedback for one of these rows was already recorded; ground truth "
                       "is not overwritten", field="feedback") from None


def _usable_outcome(value) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int | float):
        return is_finite_number(value)
    return isinstance(value, str) and 0 < len(value) <= 200 and "\x00" not in value


# --- service tokens ---------------------------------------------------------------------------


def api_token_create(*, user, name: str, actor, expires_at=None) -> tuple[ApiToken, str]:
    """A new token for `user`; the plain token is returned once and never stored."""
    if not roles.has_role(actor, roles.ADMIN_ROLES):
        raise Forbidden("Only admins make API tokens.")
    if not name.strip():
        raise ApplicationError("name the token after what uses it", field="name")
    prefix = secrets.token_hex(6)
    plain = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic(durable=True):
        token = ApiToken.objects.create(user=user, name=name, prefix=prefix,
                                        digest=digest(plain), created_by=actor,
                                        expires_at=expires_at)
        audit.record(action="api_token.created", actor=actor, subject=token,
                     after={"user": user.get_username(), "name": name,
                            "expires_at": expires_at.isoformat() if expires_at else None})
    return token, plain


def api_token_revoke(*, token: ApiToken, actor) -> ApiToken:
    from django.utils import timezone

    if not roles.has_role(actor, roles.ADMIN_ROLES):
        raise Forbidden("Only admins revoke API tokens.")
    with transaction.atomic(durable=True):
        token = ApiToken.objects.select_for_update().get(pk=token.pk)
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            audit.record(action="api_token.revoked", actor=actor, subject=token,
                         before={"revoked": False}, after={"revoked": True})
    return token


__all__ = ["Answer", "InputError", "ModelFailed", "NotServable", "predict", "feedback_record",
           "api_token_create", "api_token_revoke"]


# --- quotas -----------------------------------------------------------------------------------


def _limit_snapshot(limit: RateLimit) -> dict:
    return {"user": limit.user.get_username() if limit.user_id else None,
            "group": limit.group.name if limit.group_id else None,
            "requests_per_hour": limit.requests_per_hour}


def rate_limit_save(*, actor, requests_per_hour: int, user=None, group=None,
                    limit: RateLimit | None = None) -> RateLimit:
    """Set a user's or a group's hourly prediction quota (admins only; audited)."""
    if not roles.has_role(actor, roles.ADMIN_ROLES):
        raise Forbidden("Only admins change prediction quotas.")
    if (user is None) == (group is None):
        raise ApplicationError("a quota is for one user or one group", field="user")
    if isinstance(requests_per_hour, bool) or not isinstance(requests_per_hour, int) \
            or requests_per_hour < 0:
        raise ApplicationError("a whole number, 0 or more", field="requests_per_hour")
    with transaction.atomic(durable=True):
        before = _limit_snapshot(limit) if limit is not None else None
        limit = limit or RateLimit()
        limit.user, limit.group, limit.requests_per_hour = user, group, requests_per_hour
        try:
            with transaction.atomic():
                limit.save()
        except IntegrityError:
            raise Conflict("that user or group has a quota already; change it instead",
                           field="user" if user else "group") from None
        audit.record(action="rate_limit.created" if before is None else "rate_limit.changed",
                     actor=actor, subject=limit, before=before, after=_limit_snapshot(limit))
    return limit


def rate_limit_delete(*, limit: RateLimit, actor) -> None:
    if not roles.has_role(actor, roles.ADMIN_ROLES):
        raise Forbidden("Only admins change prediction quotas.")
    with transaction.atomic(durable=True):
        before = _limit_snapshot(limit)
        audit.record(action="rate_limit.deleted", actor=actor, subject=limit, before=before)
        limit.delete()
