"""The validation sandbox: load an artifact and try it, in a process that can do little harm.

Started by `governance.validation` as `python -I sandbox_runner.py` in a private folder that
holds copies of the verified artifact files. Before any artifact byte is deserialised, the
process limits itself:

- rlimits: address space, CPU seconds, no file may grow (RLIMIT_FSIZE 0), few descriptors,
  no core dumps; the parent also kills it at a wall-clock deadline;
- where the kernel allows it: a new network namespace (no network) and a new mount namespace
  with empty private tmpfs over /tmp, /var/tmp and /dev/shm;
- when started as root: it becomes `nobody`, so it can read the world-readable files it needs
  and write nowhere.

It never imports Django and gets no environment from the parent (no database URL, no secret
key). It reads one JSON job on stdin and writes one JSON result on stdout.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND = 1, 2, 4, 32, 4096
MS_REC, MS_PRIVATE = 16384, 1 << 18
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 38, 24
NOBODY = 65534
PRIVATE_TMP = ("/tmp", "/var/tmp", "/dev/shm")


def _limit(kind, value):
    resource.setrlimit(kind, (value, value))


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _mount_points() -> list[str]:
    points = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            point = line.split()[4].encode().decode("unicode_escape")
            points.append(point)
    return points


def _read_only_filesystems(libc) -> int:
    """Remount every mount of this (private) mount namespace read-only, but our tmpfs."""
    done = 0
    for point in _mount_points():
        if point in PRIVATE_TMP:
            continue
        if libc.mount(None, point.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY, None) == 0:
            done += 1
    return done


def _readable_by_nobody(paths) -> bool:
    """Whether an unprivileged user could run this interpreter and read the project."""
    import stat

    for path in paths:
        current = Path(path).resolve()
        for part in [current, *current.parents]:
            try:
                mode = part.stat().st_mode
            except OSError:
                return False
            if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
                return False
    return True


def _drop_capabilities(libc) -> None:
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    for capability in range(64):
        libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def isolate(limits: dict, readable_paths: list[str]) -> list[str]:
    layers = ["separate process", "empty environment"]
    memory = int(limits["memory_mb"]) * 1024 * 1024
    _limit(resource.RLIMIT_AS, memory)
    _limit(resource.RLIMIT_CPU, int(limits["cpu_seconds"]))
    _limit(resource.RLIMIT_FSIZE, 0)
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_NOFILE, 256)
    # A write past the size limit fails with EFBIG instead of killing the process silently.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    layers.append(f"rlimits (memory {limits['memory_mb']} MB, cpu {limits['cpu_seconds']} s, "
                  "no file growth)")
    if os.geteuid() != 0:
        return layers  # namespaces and privilege changes need root; the rlimits still hold
    libc = _libc()
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    if libc.unshare(flags) == 0:
        libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None)
        for target in PRIVATE_TMP:
            if os.path.isdir(target):
                libc.mount(b"tmpfs", target.encode(), b"tmpfs", MS_NOSUID | MS_NODEV,
                           b"size=16m,mode=1777")
        read_only = _read_only_filesystems(libc)
        layers += ["no network", "own process namespace", "private /tmp",
                   f"read-only file systems ({read_only} mounts)"]
        # The new process namespace starts with our next child, which does the work as its
        # PID 1: it cannot see or signal any process outside, and its children die with it.
        child = os.fork()
        if child:
            _, status = os.waitpid(child, 0)
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    if _readable_by_nobody(readable_paths):
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        layers.append("unprivileged user (nobody)")
    else:
        # The interpreter lives where `nobody` cannot read it: stay uid 0, but powerless.
        _drop_capabilities(libc)
        layers.append("no capabilities")
    return layers


def _rows(job, key="rows"):
    import numpy as np

    raw = job.get(key)
    if not raw:
        return None
    try:
        return np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):  # text columns: let the artifact's own encoders cope
        return np.asarray(raw, dtype=object)


RESULT_FD = 1


def main() -> None:
    global RESULT_FD
    job = json.loads(sys.stdin.read())
    # Keep the real stdout for the result; whatever the artifact prints goes nowhere.
    RESULT_FD = os.dup(1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    sys.stdout = open(1, "w", closefd=False)
    import sysconfig

    readable = [sys.executable, sysconfig.get_paths()["stdlib"],
                sysconfig.get_paths()["purelib"], job["project_root"], os.getcwd()]
    result: dict = {"isolation": isolate(job["limits"], readable)}
    # The project root, for the framework code in registry/artifacts.py (no Django in it).
    sys.path.insert(0, job["project_root"])
    os.environ.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})

    import numpy as np

    from registry.artifacts import LoadedModel, deserialize

    started = time.perf_counter()

    def too_slow(*_args):
        raise TimeoutError(f"did not load within {job['load_seconds']} s")

    signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(int(job["load_seconds"]))
    try:
        if job["framework"] == "torch":
            import torch

            torch.set_num_threads(1)
        estimator = deserialize(job["framework"], Path(job["model_file"]).read_bytes(),
                                job["model_file"])
        preprocessors = [deserialize("sklearn", Path(name).read_bytes(), name)
                         for name in job["preprocessors"]]
        model = LoadedModel(name="", version="", framework=job["framework"], estimator=estimator,
                            preprocessors=preprocessors)
    except BaseException as exc:  # a hostile or broken artifact may raise anything
        signal.alarm(0)
        result["load"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000],
                          "seconds": time.perf_counter() - started}
        _finish(result)
        return
    signal.alarm(0)
    result["load"] = {
        "ok": True,
        "seconds": round(time.perf_counter() - started, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    try:
        result["inputs"] = model.declared_inputs()
    except Exception as exc:  # introspection is best effort
        result["inputs"] = {"error": str(exc)}

    rows = _rows(job)
    if rows is None:
        _finish(result)
        return
    try:
        predictions = np.asarray(model.predict(rows))
        numeric = predictions.dtype.kind in "biuf"
        result["predict"] = {
            "ok": True,
            "rows": int(len(rows)),
            "outputs": int(len(predictions)),
            "finite": bool(np.all(np.isfinite(predictions))) if numeric else True,
            "sample": predictions[:5].tolist(),
        }
    except BaseException as exc:
        result["predict"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
        _finish(result)
        return
    timings = []
    single = rows[:1]
    for index in range(int(job.get("latency_runs", 30)) + 3):
        started = time.perf_counter()
        model.predict(single)
        if index >= 3:  # the first calls warm caches
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    result["latency"] = {
        "runs": len(timings),
        "p50_ms": round(timings[len(timings) // 2], 3),
        "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 3),
    }
    # Rows of the reference sample: their predictions are the distribution live predictions
    # are compared with. (A hostile artifact could lie here too: see docs/architecture.md.)
    reference = _rows(job, "reference_rows")
    if reference is not None:
        try:
            predicted = np.asarray(model.predict(reference))
            if predicted.ndim == 2 and predicted.shape[1] == 1:
                predicted = predicted[:, 0]
            if predicted.ndim != 1 or len(predicted) != len(reference):
                raise ValueError(f"predictions of shape {list(predicted.shape)} for "
                                 f"{len(reference)} rows: one value per row is needed")
            result["reference_predictions"] = predicted.tolist()
        except BaseException as exc:
            result["reference_predictions_error"] = f"{type(exc).__name__}: {exc}"[:500]
    _finish(result)


def _finish(result: dict) -> None:
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    os.write(RESULT_FD, (json.dumps(result) + "\n").encode())


if __name__ == "__main__":
    main()
