"""Running an artifact where it can do no harm: the parent side of `sandbox_runner.py`.

Two kinds of job use it: validation (load, declared inputs, predict, latency, reference
predictions) and answers for a version that has not been through four eyes (the caller's rows,
predictions and probabilities back). Either way the web and worker processes never deserialise
the artifact themselves.

What comes back is untrusted: the artifact ran in the process that wrote it. `run` bounds and
types every field (`Report.data`, safe to show every role); whatever the artifact said in its
own words (exception messages, stderr) is kept apart in `Report.log`, for admins only.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from core.errors import scrub_paths

logger = logging.getLogger(__name__)
RUNNER = Path(__file__).with_name("sandbox_runner.py")
ARTIFACTS_MODULE = Path(__file__).resolve().parents[1] / "registry" / "artifacts.py"
MAX_LOG_CHARS = 200_000
# A report holds at most PREDICTION_MAX_ROWS answers with their probabilities.
MAX_REPORT_BYTES = 64 * 2**20
MAX_STDERR_BYTES = 64 * 2**10
_NAME = re.compile(r"[^A-Za-z0-9_.]")


@dataclass
class Report:
    data: dict = field(default_factory=dict)  # sanitised: every role may read it
    log: str = ""  # the raw report and stderr: admins only

    @property
    def isolation(self) -> dict:
        return self.data.get("isolation", {"level": "none", "layers": []})


def root() -> Path:
    folder = Path(settings.VALIDATION_SANDBOX_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o755)
    return folder


def run(*, framework: str, payloads: list[tuple[str, str, bytes]], limits: dict,
        mode: str = "validate", rows=None, reference_rows=None, evaluation_rows=None,
        latency_runs: int = 30, timeout: float) -> Report:
    """Copy the verified payloads (role, filename, bytes) into a private folder and run the
    job there. Never raises for anything the artifact does."""
    folder = root() / uuid.uuid4().hex
    files, jail = folder / "files", folder / "root"
    for path in (folder, files, jail):
        path.mkdir(mode=0o755)
    try:
        names = {"model": None, "preprocessors": []}
        for index, (role, filename, data) in enumerate(payloads):
            local = f"{index:02d}-{filename}"
            (files / local).write_bytes(data)
            os.chmod(files / local, 0o644)
            if role == "model":
                names["model"] = local
            else:
                names["preprocessors"].append(local)
        job = {
            "mode": mode,
            "framework": framework,
            "model_file": names["model"],
            "preprocessors": names["preprocessors"],
            "rows": rows,
            "reference_rows": reference_rows,
            "evaluation_rows": evaluation_rows,
            "latency_runs": latency_runs,
            "load_seconds": limits["load_seconds"],
            "limits": {"memory_mb": limits["memory_mb"], "cpu_seconds": math.ceil(timeout)},
            "isolation": settings.VALIDATION_SANDBOX_ISOLATION,
            "artifacts_module": str(ARTIFACTS_MODULE),
            "files_dir": str(files),
            "jail_dir": str(jail),
            # Never mounted into the sandbox, even where an import folder would contain them.
            "forbidden": [str(settings.BASE_DIR), str(settings.VAR_DIR)],
        }
        raw, stderr, death = _execute(folder, job, timeout)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return _report(raw, stderr, death, job)


def _execute(folder: Path, job: dict, timeout: float) -> tuple[dict | None, str, str]:
    process = subprocess.Popen(
        [sys.executable, "-I", str(RUNNER)],
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so that everything it starts dies too
    )
    try:
        out, err, death = _exchange(process, json.dumps(job).encode(), timeout)
    finally:
        _kill_group(process)
        for pipe in (process.stdin, process.stdout, process.stderr):
            pipe.close()
        process.wait()
    stderr = err.decode(errors="replace")
    if death:
        return None, stderr, death
    lines = [line for line in out.decode(errors="replace").splitlines() if line.strip()]
    try:
        report = read_report(lines[-1], job)
        return report, stderr, ""
    except (IndexError, ValueError):
        code = process.returncode
        how = (f"killed by signal {signal.Signals(-code).name}" if code and code < 0
               else f"exit status {code}")
        return None, stderr, f"the sandbox process died ({how})"


# Reading a report costs ~25x its size in memory when it is mostly empty arrays ("[],"
# is 3 bytes, an empty list 56): a report past this size may hold only as many arrays and
# objects as the job's rows can explain (a row of probabilities per row, a list per column).
CHECKED_REPORT_CHARS = 2**20


def read_report(line: str, job: dict) -> dict:
    """The report line as a dict; ValueError for anything else, or for a large report with
    more arrays and objects than its answers need (a hostile artifact's memory bomb)."""
    if len(line) > CHECKED_REPORT_CHARS:
        evaluation_rows = job.get("evaluation_rows") or []
        rows = (len(job.get("rows") or []) + len(job.get("reference_rows") or [])
                + len(evaluation_rows))
        columns = len(evaluation_rows[0]) if evaluation_rows else 0
        if line.count("[") + line.count("{") > 2 * rows + columns + 1000:
            raise ValueError("more arrays than the job's rows explain")
    report = json.loads(line)
    if not isinstance(report, dict):
        raise ValueError
    return report


def _exchange(process, job: bytes, timeout: float) -> tuple[bytes, bytes, str]:
    """Write the job, read the report and stderr, within the deadline and within bounds: an
    artifact may write gigabytes or hold the pipes open from a process of its own. Returns
    (stdout, stderr, why it was stopped or "")."""
    deadline = time.monotonic() + timeout
    out, err = bytearray(), bytearray()
    pending = memoryview(job)
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdin, selectors.EVENT_WRITE)
        selector.register(process.stdout, selectors.EVENT_READ)
        selector.register(process.stderr, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bytes(out), bytes(err), f"did not finish within {timeout:.0f} s; killed"
            for key, _ in selector.select(min(remaining, 1.0)):
                if key.fileobj is process.stdin:
                    try:
                        written = os.write(process.stdin.fileno(), pending[:65536])
                    except BrokenPipeError:
                        written = len(pending)
                    pending = pending[written:]
                    if not pending:
                        selector.unregister(process.stdin)
                        process.stdin.close()
                    continue
                chunk = os.read(key.fileobj.fileno(), 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                elif key.fileobj is process.stdout:
                    out += chunk
                    if len(out) > MAX_REPORT_BYTES:
                        return b"", bytes(err), (f"the sandbox's answer passed "
                                                 f"{MAX_REPORT_BYTES // 2**20} MB; killed")
                elif len(err) < MAX_STDERR_BYTES:  # the rest is drained, not kept
                    err += chunk[:MAX_STDERR_BYTES - len(err)]
            if process.poll() is not None:
                # Exited: whatever still holds the pipes (in weak isolation, a process it
                # left behind) gets a moment, not the rest of the deadline.
                deadline = min(deadline, time.monotonic() + 2)
    return bytes(out), bytes(err), ""


def _kill_group(process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# --- bounding what came back ------------------------------------------------------------------


def type_name(value) -> str:
    """An exception's class name as the artifact gave it, reduced to a harmless identifier."""
    return _NAME.sub("", str(value))[:80] or "an exception"


def _number(value, default=None):
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    try:
        return value if math.isfinite(value) else default
    except OverflowError:  # a JSON integer no float holds
        return default


def _text(value, limit: int) -> str:
    # What the artifact could read inside the sandbox includes the paths of its own mounts
    # (the interpreter's folders): they are the server's, and are not shown.
    return scrub_paths(str(value)[:limit])


def _short(value, limit: int = 64):
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return _number(value)
    return _text(value, limit)


def _strings(values, limit: int = 10_000) -> list[str] | None:
    if not isinstance(values, list):
        return None
    return [_text(v, 200) for v in values[:limit]]


def _error(section: dict) -> dict:
    error = section.get("error") if isinstance(section, dict) else None
    if not isinstance(error, dict):
        return {"type": "an exception"}
    out = {"type": type_name(error.get("type"))}
    if error.get("cause"):
        out["cause"] = type_name(error.get("cause"))
    return out


def _section(raw: dict, key: str) -> dict:
    value = raw.get(key)
    return value if isinstance(value, dict) else {}


def _report(raw: dict | None, stderr: str, death: str, job: dict) -> Report:
    log = json.dumps({"report": raw, "stderr": stderr[-20_000:], "ended": death or "normally"},
                     indent=1, default=str)[:MAX_LOG_CHARS]
    if raw is None:
        return Report({"isolation": {"level": "unknown", "layers": []},
                       "load": {"ok": False, "died": death}}, log)
    isolation = _section(raw, "isolation")
    level = isolation.get("level")
    data: dict = {"isolation": {
        "level": level if level in ("full", "weak", "none") else "unknown",
        "layers": (_strings(isolation.get("layers"), 12) or []),
    }}
    if isolation.get("missing"):
        data["isolation"]["missing"] = str(isolation["missing"])[:300]
    load = _section(raw, "load")
    if load.get("ok") is True:
        data["load"] = {"ok": True, "seconds": _number(load.get("seconds"), 0.0)}
    elif load.get("refused"):
        data["load"] = {"ok": False, "refused": str(load["refused"])[:300]}
    else:
        data["load"] = {"ok": False, "timed_out": bool(load.get("timed_out")), **_error(load)}
    data["peak_rss_mb"] = _number(raw.get("peak_rss_mb"), 0.0)
    inputs = _section(raw, "inputs")
    if inputs:
        n_features = inputs.get("n_features")
        data["inputs"] = {"n_features": n_features if isinstance(n_features, int)
                          and not isinstance(n_features, bool) else None,
                          "names": _strings(inputs.get("names"))}
    predict = _section(raw, "predict")
    if predict:
        if predict.get("ok") is True:
            sample = predict.get("sample") if isinstance(predict.get("sample"), list) else []
            data["predict"] = {"ok": True, "rows": _number(predict.get("rows"), 0),
                               "outputs": _number(predict.get("outputs"), -1),
                               "finite": predict.get("finite") is True,
                               "sample": [_short(v) for v in sample[:5]]}
        else:
            data["predict"] = {"ok": False, **_error(predict)}
    latency = _section(raw, "latency")
    if latency:
        data["latency"] = {key: _number(latency.get(key), 0.0)
                           for key in ("runs", "p50_ms", "p99_ms")}
    reference = raw.get("reference_predictions")
    expected = len(job.get("reference_rows") or [])
    if isinstance(reference, list) and len(reference) == expected:
        data["reference_predictions"] = [_short(v, 200) for v in reference]
    elif raw.get("reference_predictions_error") or reference is not None:
        data["reference_predictions_error"] = type_name(
            (_section(raw, "reference_predictions_error") or {}).get("type", "a bad answer"))
    answer = _section(raw, "answer")
    if answer:
        data["answer"] = _answer(answer, len(job.get("rows") or []))
    evaluation = _section(raw, "evaluation")
    if evaluation:
        data["evaluation"] = _evaluation(evaluation, job.get("evaluation_rows") or [])
    return Report(data, log)


def _evaluation(section: dict, rows: list) -> dict:
    """The answers on the labelled rows, typed and bounded: one prediction per row, a row of
    probabilities per row (one per class), the classes, and one list of predictions per
    permuted column."""
    if section.get("ok") is not True:
        return {"ok": False, **_error(section)}
    n_rows, n_columns = len(rows), len(rows[0]) if rows else 0

    def scalars(values):
        return (isinstance(values, list) and len(values) == n_rows
                and all(isinstance(v, str | int | float) and (isinstance(v, str)
                        or _number(v) is not None) for v in values))

    predictions = section.get("predictions")
    if not scalars(predictions):
        return {"ok": False, "type": "predictions that are not one value per row"}
    clean = [_short(v, 200) if isinstance(v, str) else v for v in predictions]
    classes = section.get("classes")
    probabilities = section.get("probabilities")
    if classes is not None and (not isinstance(classes, list) or not 2 <= len(classes) <= 1000
                                or not all(isinstance(c, str | int | float) for c in classes)):
        classes = None
    if probabilities is not None:
        width = len(classes) if classes else None
        if (not isinstance(probabilities, list) or len(probabilities) != n_rows
                or not all(isinstance(row, list) and (width is None or len(row) == width)
                           and all(_number(v) is not None for v in row)
                           for row in probabilities)):
            probabilities = None
    if probabilities is None or classes is None:
        probabilities, classes = None, None
    permuted = section.get("permuted")
    if not isinstance(permuted, list) or len(permuted) != n_columns \
            or not all(scalars(column) for column in permuted):
        permuted = None
    else:
        permuted = [[_short(v, 200) if isinstance(v, str) else v for v in column]
                    for column in permuted]
    return {"ok": True, "predictions": clean, "probabilities": probabilities,
            "classes": [_short(c, 200) if isinstance(c, str) else c for c in classes]
            if classes else None, "permuted": permuted}


def _answer(answer: dict, n_rows: int) -> dict:
    """Predictions, one per row, and probabilities, one row of numbers per row, or refused."""
    if answer.get("ok") is not True:
        return {"ok": False, **_error(answer)}
    predictions = answer.get("predictions")
    probabilities = answer.get("probabilities")
    if not isinstance(predictions, list) or len(predictions) != n_rows:
        return {"ok": False, "type": "a wrong number of predictions"}
    if any(isinstance(p, dict | list) for p in predictions):
        return {"ok": False, "type": "predictions that are not one value per row"}
    predictions = [_short(p, 200) if isinstance(p, str) else p for p in predictions]
    if probabilities is not None:
        if (not isinstance(probabilities, list) or len(probabilities) != n_rows
                or not all(isinstance(row, list) and all(_number(v) is not None for v in row)
                           for row in probabilities)):
            return {"ok": False, "type": "probabilities that are not one row of numbers per row"}
    return {"ok": True, "predictions": predictions, "probabilities": probabilities}
