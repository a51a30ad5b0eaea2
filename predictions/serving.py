"""What answers a prediction: routing, the model cache, and the prediction itself.

Per web process: a routing table (which version answers for a model, and any canary or
shadow candidate), refreshed when the serving generation changes (one small query every
PREDICTION_ROUTING_TTL seconds, by a watcher thread that loads the new versions before it
swaps the routes in); and an LRU cache of loaded models bounded by PREDICTION_CACHE_MAX_MB. A version is loaded on first use — after its sha256 is checked
(load_version) and only if its latest validation passed — and concurrent first requests
load it once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from governance import policies, sandbox
from governance import selectors as governance_selectors
from predictions.inputs import Signature
from registry.loaders import ArtifactIntegrityError, load_version, read_verified
from registry.models import FileRole, ModelVersion, RegisteredModel, Stage

logger = logging.getLogger(__name__)


class NotServable(Exception):
    def __init__(self, message: str, status: int = 503):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Target:
    version_id: int
    version: str
    framework: str
    signature: Signature
    size_bytes: int
    integrity_failed: bool = False


@dataclass(frozen=True)
class ModelRoute:
    model_id: int
    name: str
    production: Target | None
    candidate: Target | None = None
    mode: str = ""
    percent: int = 0
    rollout_id: int | None = None

    def choose(self, routing_key: str) -> tuple[Target | None, str, Target | None]:
        """(who answers, how it was routed, who shadows)."""
        if self.candidate is not None and self.mode == "canary" and self.percent > 0:
            if routing_key:
                digest = hashlib.sha256(f"{self.rollout_id}:{routing_key}".encode()).digest()
                bucket = int.from_bytes(digest[:4], "big") % 100
            else:
                bucket = random.randrange(100)
            if bucket < self.percent:
                return self.candidate, "canary", None
        shadow = self.candidate if self.mode == "shadow" else None
        return self.production, "production", shadow


def _target(version: ModelVersion) -> Target:
    columns = version.columns
    if not columns:
        raise NotServable(f"{version} declares no features (metadata `features` or "
                          "`signature`), so no request's rows can be checked: register a "
                          "version that does")
    size = sum(f.size for f in version.files.all() if f.role in ("model", "preprocessor"))
    return Target(version.pk, version.version, version.framework, Signature.of(columns), size,
                  integrity_failed=version.integrity_failed_at is not None)


def unavailable(version) -> NotServable:
    return NotServable(f"model unavailable: a file of {version} failed its sha256 check; an "
                       "operator has been alerted", status=503)


def verified_payloads(version: ModelVersion) -> list[tuple[str, str, bytes]]:
    """The model and preprocessor files' bytes, each checked against its sha256. A file
    that fails flags the version (registry) and the request gets a 503, never a 500."""
    from registry import services as registry_services

    try:
        return [(f.role, f.filename, read_verified(version, f))
                for f in sorted(version.files.all(), key=lambda f: f.position)
                if f.role in (FileRole.MODEL, FileRole.PREPROCESSOR)]
    except ArtifactIntegrityError as exc:
        logger.error("integrity: %s", exc)
        registry_services.version_integrity_failed(version=version, error=exc,
                                                   found_by="prediction API")
        raise unavailable(version) from None


class RoutingTable:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, ModelRoute] = {}
        self._direct: dict[tuple[str, str], tuple[int, Target, str]] = {}
        self._generation: int | None = None
        self._checked = 0.0

    def refresh(self, *, force: bool = False) -> bool:
        """Drop cached routes if what serves has changed. True when it had."""
        now = time.monotonic()
        if not force and now - self._checked < settings.PREDICTION_ROUTING_TTL:
            return False
        generation = governance_selectors.serving_generation()
        self._checked = now
        if generation == self._generation:
            return False
        with self._lock:
            self._routes, self._direct, self._generation = {}, {}, generation
        return True

    def refresh_warm(self) -> bool:
        """The watcher's refresh: on a new generation, build the routes of the models this
        process serves, load their versions, and only then swap them in. Requests keep the
        old routes, and their warm models, until the new ones are ready, so the first request
        a new version answers is as fast as any other."""
        generation = governance_selectors.serving_generation()
        if generation == self._generation:
            return False
        fresh = {}
        for name in list(self._routes):
            try:
                route = self._build(name)
            except NotServable:
                continue
            _load_and_warm(route)
            fresh[name] = route
        with self._lock:
            self._routes, self._direct, self._generation = fresh, {}, generation
            self._checked = time.monotonic()
        return True

    def route(self, name: str) -> ModelRoute:
        if watcher is None:  # no watcher thread (tests, a shell): check on the request path
            self.refresh()
        route = self._routes.get(name)
        if route is None:
            generation = self._generation
            route = self._build(name)
            with self._lock:
                # Built from the database as it was: kept only if nothing changed meanwhile.
                if self._generation == generation:
                    self._routes[name] = route
        return route

    def _build(self, name: str) -> ModelRoute:
        model = RegisteredModel.objects.filter(name=name).first()
        if model is None:
            raise NotServable(f"no registered model named {name!r}", status=404)
        production = (ModelVersion.objects.filter(model=model, stage=Stage.PRODUCTION)
                      .prefetch_related("files").first())
        rollout = governance_selectors.active_rollout(model.pk)
        candidate = None
        if rollout is not None:
            candidate = _target(ModelVersion.objects.prefetch_related("files")
                                .get(pk=rollout.candidate_id))
        return ModelRoute(
            model_id=model.pk, name=name,
            production=_target(production) if production else None,
            candidate=candidate,
            mode=rollout.mode if rollout else "",
            percent=rollout.percent if rollout else 0,
            rollout_id=rollout.pk if rollout else None,
        )

    def clear(self) -> None:
        with self._lock:
            self._routes, self._direct, self._generation, self._checked = {}, {}, None, 0.0

    def version(self, name: str, number: str) -> tuple[int, Target, str]:
        """(model id, target, stage) of one version, for callers that name it."""
        if watcher is None:
            self.refresh()
        key = (name, number)
        found = self._direct.get(key)
        if found is None:
            version = (ModelVersion.objects.select_related("model").prefetch_related("files")
                       .filter(model__name=name, version=number).first())
            if version is None:
                if not RegisteredModel.objects.filter(name=name).exists():
                    raise NotServable(f"no registered model named {name!r}", status=404)
                raise NotServable(f"{name} has no version {number!r}", status=404)
            generation = self._generation
            found = (version.model_id, _target(version), version.stage)
            with self._lock:
                if self._generation == generation:
                    self._direct[key] = found
        return found


class ModelCache:
    """Loaded versions, least recently used evicted first, within a memory budget."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, tuple] = OrderedDict()
        self._loading: dict[int, Future] = {}
        self._loaded_by: dict[int, int] = {}  # version id -> pid of the process that loaded it
        self.warmed: set[tuple[int, int]] = set()  # (pid, version id): calls are per process
        self.bytes = 0

    def __contains__(self, version_id: int) -> bool:
        return version_id in self._entries

    def get(self, target: Target):
        with self._lock:
            entry = self._entries.get(target.version_id)
            if entry is not None:
                self._entries.move_to_end(target.version_id)
                return entry[0]
            future = self._loading.get(target.version_id)
            loader = future is None
            if loader:
                future = self._loading[target.version_id] = Future()
        if not loader:
            return future.result()  # another thread is loading it: wait for that load
        try:
            loaded = self._load(target)
        except BaseException as exc:
            future.set_exception(exc)
            with self._lock:
                del self._loading[target.version_id]
            raise
        with self._lock:
            self._entries[target.version_id] = (loaded, target.size_bytes)
            self._loaded_by[target.version_id] = os.getpid()
            self.bytes += target.size_bytes
            del self._loading[target.version_id]
            self._evict()
        future.set_result(loaded)
        return loaded

    def _load(self, target: Target):
        version = (ModelVersion.objects.select_related("model").prefetch_related("files")
                   .get(pk=target.version_id))
        ok, reason = governance_selectors.servable(version)
        if version.integrity_failed_at is not None:
            raise unavailable(version)
        if not ok:
            raise NotServable(f"{reason}: it is not served until a validation passes")
        if version.framework == "torch":
            import torch

            torch.set_num_threads(settings.PREDICTION_TORCH_THREADS)
        started = time.perf_counter()
        loaded = load_version(version, verified_payloads(version))
        logger.info("loaded %s in %.1f ms", version, (time.perf_counter() - started) * 1000)
        return loaded

    def _evict(self) -> None:
        budget = settings.PREDICTION_CACHE_MAX_MB * 1024 * 1024
        while self.bytes > budget and len(self._entries) > 1:
            version_id, (_, size) = self._entries.popitem(last=False)
            self._loaded_by.pop(version_id, None)
            self.bytes -= size
            logger.info("evicted version %s from the model cache", version_id)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._loaded_by.clear()
            self.warmed.clear()
            self.bytes = 0

    def inherited(self) -> list[int]:
        """Versions this process did not load itself: loaded before the fork (gunicorn's
        master, `preload(before_fork=True)`), so their pages are shared with it."""
        me = os.getpid()
        return [version_id for version_id, pid in self._loaded_by.items() if pid != me]


routes = RoutingTable()
models = ModelCache()


class SandboxedModelFailed(Exception):
    """The version loaded in the sandbox but raised on the rows (its message stays there)."""


def answer_in_sandbox(target: Target, matrix) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions from a version that has not been through four eyes: its files are verified
    here, then loaded and run in a one-off sandbox process (governance.sandbox), never in this
    one. A few hundred milliseconds or more per request: it is for assessing candidates."""
    version = (ModelVersion.objects.select_related("model").prefetch_related("files")
               .get(pk=target.version_id))
    ok, reason = governance_selectors.servable(version)
    if version.integrity_failed_at is not None:
        raise unavailable(version)
    if not ok:
        raise NotServable(f"{reason}: it is not served until a validation passes")
    payloads = verified_payloads(version)
    policy = policies.effective_policy(version.model)
    report = sandbox.run(
        framework=version.framework, payloads=payloads, mode="answer", rows=matrix.tolist(),
        limits={"load_seconds": policy.load_timeout_seconds, "memory_mb": policy.load_memory_mb},
        timeout=2 * policy.load_timeout_seconds + 5,
    )
    load, answer = report.data["load"], report.data.get("answer") or {}
    if not load.get("ok"):
        logger.warning("%s did not load in the sandbox: %s", version, report.log[:2000])
        raise NotServable(f"{version} did not load in the sandbox; its latest validation may "
                          "be out of date")
    if not answer.get("ok"):
        logger.warning("%s failed in the sandbox: %s", version, report.log[:2000])
        raise SandboxedModelFailed(sandbox.type_name(answer.get("type")))
    probabilities = answer["probabilities"]
    return (np.asarray(answer["predictions"]),
            None if probabilities is None else np.asarray(probabilities, dtype=np.float64))


# Formats whose loaded objects may cross a fork: plain Python and NumPy objects. Not torch or
# onnxruntime, whose thread pools do not survive a fork (the child's first call can hang).
FORK_SAFE_FRAMEWORKS = frozenset({"sklearn"})


def _load_and_warm(route: ModelRoute, *, before_fork: bool = False) -> list[str]:
    """Load the route's versions not loaded yet and call each a few times (a model's first
    calls are its slowest). Returns what it loaded; what cannot load is logged, and the
    request that needs it will say why.

    Before a fork only fork-safe formats are loaded, and none is called: a call could start
    an OpenMP or BLAS thread pool that the forked workers would not have. Each worker warms
    what it inherited (`preload()` after the fork)."""
    done = []
    for target in (route.production, route.candidate):
        if target is None:
            continue
        if before_fork and target.framework not in FORK_SAFE_FRAMEWORKS:
            continue
        try:
            fresh = target.version_id not in models
            loaded = models.get(target)
            key = (os.getpid(), target.version_id)
            if not before_fork and key not in models.warmed:
                models.warmed.add(key)
                if target.signature.numeric:
                    for _ in range(3):
                        loaded.predict_with_probabilities(
                            np.zeros((1, len(target.signature.names))))
            if fresh:
                done.append(f"{route.name} {target.version}")
        except Exception as exc:
            logger.warning("not preloaded: %s", getattr(exc, "message", exc))
    return done


def preload(names=None, *, before_fork: bool = False) -> list[str]:
    """Load the production version (and any candidate) of each model now; with
    `before_fork`, in gunicorn's master (config/gunicorn.py), the fork-safe ones only, so
    that every worker shares their pages instead of loading its own copy."""
    queryset = RegisteredModel.objects.order_by("name")
    if names is not None:
        queryset = queryset.filter(name__in=names)
    return [loaded for name in queryset.values_list("name", flat=True)
            for loaded in _load_and_warm(routes.route(name), before_fork=before_fork)]


class Watcher(threading.Thread):
    """Notices a change of what serves within a second and swaps in the new routes once
    their versions are loaded (`RoutingTable.refresh_warm`)."""

    def __init__(self, interval: float = 0.5):
        super().__init__(name="serving-watcher", daemon=True)
        self.interval = interval

    def run(self) -> None:
        from django.db import close_old_connections

        while True:
            time.sleep(self.interval)
            try:
                close_old_connections()
                routes.refresh_warm()
            except Exception:  # the next tick tries again
                logger.exception("serving watcher")


watcher: Watcher | None = None


def start_watcher() -> Watcher:
    global watcher
    if watcher is None:
        try:
            routes.refresh(force=True)  # the generation the first routes are built under
        except Exception:  # the database may be starting too: the watcher's ticks retry
            logger.exception("serving watcher: first refresh failed")
        watcher = Watcher(interval=max(settings.PREDICTION_ROUTING_TTL, 0.05))
        watcher.start()
    return watcher
