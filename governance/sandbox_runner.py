"""The sandbox: load an artifact and use it, in a process that can reach nothing it does not need.

Started by `governance.sandbox` as `python -I sandbox_runner.py` with the job (JSON) on stdin
and a folder of verified artifact copies. Before a byte of the artifact is deserialised, the
process shuts itself in:

- rlimits: address space, CPU seconds, file size, descriptors, processes, no core dumps (the
  parent also kills it at a wall-clock deadline);
- new mount, network, process, IPC and UTS namespaces (a user namespace too when it does not
  start as root), so: no network at all, no other process visible;
- a new root file system (pivot_root) that holds only the interpreter's library folders and
  site-packages (read-only), /usr and the loader's cache (read-only), the artifact copies at
  /sandbox (read-only), /dev/null and friends, its own /proc, and a private, size-limited /tmp:
  no project file, no `var/`, no /etc/shadow, no home folder exists in its view;
- an unprivileged user (`nobody`, started as root) or no capabilities (started as a user), and
  no-new-privileges.

The job carries no secret and the environment is empty. When namespaces are unavailable
(no root and no user namespaces), `isolation: required` refuses to load anything;
`best-effort` runs with the rlimits alone and says so in the report (`level: weak`).

One JSON report goes to the original stdout. It is untrusted data (the artifact ran in this
process and can forge it): the parent bounds and sanitises every field.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import os
import platform
import resource
import select
import signal
import sys
import time
from pathlib import Path

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MS_NOATIME, MS_NODIRATIME, MS_REC, MS_PRIVATE, MS_RELATIME = 1024, 2048, 16384, 1 << 18, 1 << 21
# statvfs f_flag bits -> the mount flags a read-only remount must keep (a user namespace may
# not clear a flag the source mount has locked).
ST_TO_MS = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: MS_NOATIME,
            2048: MS_NODIRATIME, 4096: MS_RELATIME}
MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 38, 24, 1, 4
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41}
NOBODY = 65534
SCRATCH_MB = 64
# Read-only system folders the loader and compiled extensions need (by soname: ld.so.cache).
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf")
DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")


class IsolationUnavailable(Exception):
    pass


def _limit(kind, value):
    resource.setrlimit(kind, (value, value))


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _encode(value):
    return value.encode() if isinstance(value, str) else value


def _mount(libc, source, target, fstype, flags, data=None) -> None:
    _check(libc.mount(_encode(source), _encode(target), _encode(fstype), flags, _encode(data)),
           f"mount {target}")


def _bind_read_only(libc, source: str, target: str) -> None:
    _mount(libc, source, target, None, MS_BIND)
    kept = 0
    for st_flag, ms_flag in ST_TO_MS.items():
        if os.statvfs(source).f_flag & st_flag:
            kept |= ms_flag
    _mount(libc, None, target, None,
           MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | kept)


def _placeholder(path: Path, directory: bool) -> None:
    if directory:
        path.mkdir(parents=True, exist_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def _narrowest(paths) -> list[str]:
    """Existing paths, without those inside another one of them."""
    found = sorted({os.path.abspath(p) for p in paths if p and os.path.exists(p)})
    kept: list[str] = []
    for path in found:
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


def _python_dirs(forbidden: list[str]) -> list[str]:
    """The interpreter's import folders, minus any that would reveal a forbidden folder
    (a virtualenv made at the project root, say)."""
    out = []
    for path in _narrowest(sys.path):
        if os.path.isdir(path) and not any(
                f == path or f.startswith(path.rstrip("/") + "/") for f in forbidden):
            out.append(path)
    return out


def _build_root(libc, jail: str, files_dir: str, forbidden: list[str]) -> None:
    """Mount the sandbox's whole view of the file system under `jail`, then pivot into it."""
    _mount(libc, "tmpfs", jail, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    root = Path(jail)
    (root / "tmp").mkdir(mode=0o1777)
    _mount(libc, "tmpfs", str(root / "tmp"), "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={SCRATCH_MB}m,mode=1777")
    for name in SYSTEM_DIRS:
        if os.path.islink(name):  # usrmerge: /lib -> usr/lib
            os.symlink(os.readlink(name), root / name.lstrip("/"))
        elif os.path.isdir(name):
            _placeholder(root / name.lstrip("/"), True)
            _bind_read_only(libc, name, str(root / name.lstrip("/")))
    for name in SYSTEM_FILES:
        if os.path.isfile(name):
            _placeholder(root / name.lstrip("/"), False)
            _bind_read_only(libc, name, str(root / name.lstrip("/")))
    # The interpreter's folders, at the same paths (imports keep working); their parents are
    # fresh empty folders of this tmpfs, so a 0700 home above them is not a wall.
    for path in _python_dirs(forbidden):
        if path.startswith("/usr/"):
            continue  # already there
        target = root / path.lstrip("/")
        _placeholder(target, True)
        _bind_read_only(libc, path, str(target))
    (root / "dev").mkdir()
    _mount(libc, "tmpfs", str(root / "dev"), "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=0755")
    for device in DEVICES:
        if os.path.exists(device):
            _placeholder(root / device.lstrip("/"), False)
            _mount(libc, device, str(root / device.lstrip("/")), None, MS_BIND)
    (root / "dev" / "shm").mkdir(mode=0o1777)
    _mount(libc, "tmpfs", str(root / "dev" / "shm"), "tmpfs", MS_NOSUID | MS_NODEV,
           "size=16m,mode=1777")
    (root / "sandbox").mkdir()
    _bind_read_only(libc, files_dir, str(root / "sandbox"))
    # No /proc: nothing a model needs lives there, and it would show the kernel's and this
    # process's memory (/proc/self/mem) to the artifact.
    (root / ".old").mkdir()
    os.chdir(jail)
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is not None and libc.syscall(number, b".", b".old") == 0:
        os.chdir("/")
        _check(libc.umount2(b"/.old", MNT_DETACH), "umount the old root")
        os.rmdir("/.old")
    else:
        os.chroot(".")
        os.chdir("/")
    _mount(libc, None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _drop_capabilities(libc) -> None:
    for capability in range(64):
        libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    _check(libc.capset(ctypes.byref(header), data), "capset")


def _map_user(uid: int, gid: int) -> None:
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
    Path("/proc/self/gid_map").write_text(f"0 {gid} 1")


def _rlimits(limits: dict) -> None:
    _limit(resource.RLIMIT_AS, int(limits["memory_mb"]) * 1024 * 1024)
    _limit(resource.RLIMIT_CPU, int(limits["cpu_seconds"]))
    _limit(resource.RLIMIT_FSIZE, SCRATCH_MB * 1024 * 1024)
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_NOFILE, 256)
    # A write past the size limit fails with EFBIG instead of killing the process silently.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _drop_rights(libc, as_root: bool) -> None:
    if as_root:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    else:
        _drop_capabilities(libc)
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def isolate(job: dict) -> dict:
    """Shut this process in (see the module doc). Returns what was achieved."""
    limits = job["limits"]
    layers = ["separate process", "empty environment",
              f"rlimits (memory {limits['memory_mb']} MB, cpu {limits['cpu_seconds']} s)"]
    libc = _libc()
    uid, gid = os.getuid(), os.getgid()
    as_root = os.geteuid() == 0
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    try:
        _check(libc.unshare(flags | (0 if as_root else CLONE_NEWUSER)), "unshare")
        if not as_root:
            _map_user(uid, gid)
        _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    except OSError as exc:
        if job["isolation"] == "required":
            raise IsolationUnavailable(
                f"this machine cannot isolate the sandbox ({exc.strerror}: namespaces need "
                "root or unprivileged user namespaces)") from None
        _rlimits(limits)
        if as_root:  # no namespaces, but at least not root
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            layers.append("unprivileged user (nobody)")
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        return {"level": "weak", "layers": layers,
                "missing": f"namespaces unavailable ({exc.strerror})"}
    # The new process namespace starts with our next child, its PID 1. That init runs only
    # this code: it builds the root file system, drops its rights and waits; a grandchild
    # does the work. When this outer process dies (the parent kills its process group at the
    # deadline), the init gets SIGKILL (parent-death signal), and the kernel then kills every
    # process of the namespace: nothing the artifact started, even in a session of its own,
    # outlives the job. Signals from inside the namespace cannot kill its init.
    alive_read, alive_write = os.pipe()
    init = os.fork()
    if init:
        os.close(alive_read)
        signal.signal(signal.SIGTERM, lambda *_: os.kill(init, signal.SIGKILL))
        _, status = os.waitpid(init, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    os.close(alive_write)
    _build_root(libc, job["jail_dir"], job["files_dir"], job.get("forbidden", []))
    layers += ["no network", "own process namespace", "own root file system (artifact, "
               "interpreter and system libraries read-only; private /tmp)"]
    _drop_rights(libc, as_root)
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "pdeathsig")
    _check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "dumpable")  # not ptrace-able by nobody
    if select.select([alive_read], [], [], 0)[0]:  # the outer process died before pdeathsig
        os._exit(1)
    worker = os.fork()
    if worker:
        while True:  # reap everything the worker leaves; end when the worker ends
            pid, status = os.wait()
            if pid == worker:
                os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    os.close(alive_read)
    _rlimits(limits)
    _limit(resource.RLIMIT_NPROC, 64)
    layers.append("unprivileged user (nobody)" if as_root else "no capabilities")
    os.chdir("/sandbox")
    os.environ.clear()
    os.environ.update({"HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
                       "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                       "MKL_NUM_THREADS": "1"})
    return {"level": "full", "layers": layers}


def _rows(job, key="rows"):
    import numpy as np

    raw = job.get(key)
    if not raw:
        return None
    try:
        return np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):  # text columns: let the artifact's own encoders cope
        return np.asarray(raw, dtype=object)


class LoadTimeout(BaseException):
    """Our alarm: a BaseException, so that no `except Exception` in a framework swallows it."""


def _error(exc: BaseException) -> dict:
    cause = exc.__cause__ or exc.__context__
    return {"type": type(exc).__name__, "cause": type(cause).__name__ if cause else None,
            "message": str(exc)[:4000]}


RESULT_FD = 1


def _load_framework_code(path: str):
    """registry/artifacts.py by file (no package, no Django), imported while still outside."""
    spec = importlib.util.spec_from_file_location("sandboxed_artifacts", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def main() -> None:
    global RESULT_FD
    job = json.loads(sys.stdin.read())
    # Keep the real stdout for the report; whatever the artifact prints goes nowhere.
    RESULT_FD = os.dup(1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    sys.stdout = open(1, "w", closefd=False)
    # Our own code and the numeric stack are imported before the door closes.
    import numpy as np

    artifacts = _load_framework_code(job["artifacts_module"])
    result: dict = {}
    try:
        result["isolation"] = isolate(job)
    except IsolationUnavailable as exc:
        result["isolation"] = {"level": "none", "layers": [], "missing": str(exc)}
        result["load"] = {"ok": False, "refused": str(exc)}
        _finish(result)
        return
    started = time.perf_counter()

    def too_slow(*_args):
        raise LoadTimeout

    signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(int(job["load_seconds"]))
    try:
        if job["framework"] == "torch":
            import torch

            torch.set_num_threads(1)
        estimator = artifacts.deserialize(job["framework"], Path(job["model_file"]).read_bytes(),
                                          job["model_file"])
        preprocessors = [artifacts.deserialize("sklearn", Path(name).read_bytes(), name)
                         for name in job["preprocessors"]]
        model = artifacts.LoadedModel(name="", version="", framework=job["framework"],
                                      estimator=estimator, preprocessors=preprocessors)
    except LoadTimeout:
        result["load"] = {"ok": False, "timed_out": True}
        _finish(result)
        return
    except BaseException as exc:  # a hostile or broken artifact may raise anything
        signal.alarm(0)
        result["load"] = {"ok": False, "error": _error(exc),
                          "seconds": time.perf_counter() - started}
        _finish(result)
        return
    signal.alarm(0)
    result["load"] = {"ok": True, "seconds": round(time.perf_counter() - started, 4)}
    if job.get("mode") == "answer":
        _answer(job, model, result)
    else:
        _validate(job, model, result, np)
    _finish(result)


def _answer(job, model, result) -> None:
    """Predictions (and probabilities) for the caller's rows: a request for a version that has
    not been through four eyes."""
    import numpy as np

    rows = _rows(job)
    try:
        predictions, probabilities = model.predict_with_probabilities(rows)
        result["answer"] = {
            "ok": True,
            "predictions": np.asarray(predictions).tolist(),
            "probabilities": (None if probabilities is None
                              else np.asarray(probabilities).tolist()),
        }
    except BaseException as exc:
        result["answer"] = {"ok": False, "error": _error(exc)}


def _validate(job, model, result, np) -> None:
    try:
        result["inputs"] = model.declared_inputs()
    except Exception as exc:  # introspection is best effort
        result["inputs"] = {"error": _error(exc)}
    rows = _rows(job)
    if rows is None:
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
        result["predict"] = {"ok": False, "error": _error(exc)}
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
            result["reference_predictions_error"] = _error(exc)
    _evaluate(job, model, result, np)


def _evaluate(job, model, result, np) -> None:
    """Answers on the labelled rows (the labels stay outside): predictions, probabilities and
    classes, and the predictions with each column shuffled in turn (permutation importance).
    The metrics are computed by the parent from these arrays, never here."""
    rows = _rows(job, "evaluation_rows")
    if rows is None:
        return
    try:
        predictions, probabilities = model.predict_with_probabilities(rows)
        predictions = np.asarray(predictions)
        if predictions.ndim == 2 and predictions.shape[1] == 1:
            predictions = predictions[:, 0]
        classes = None
        if probabilities is not None:
            final = getattr(model.estimator, "classes_", None)
            if final is None and hasattr(model.estimator, "steps"):
                final = getattr(model.estimator.steps[-1][1], "classes_", None)
            classes = None if final is None else np.asarray(final).tolist()
        rng = np.random.default_rng(int(job.get("evaluation_seed", 0)))
        permuted = []
        for column in range(rows.shape[1]):
            shuffled = rows.copy()
            shuffled[:, column] = shuffled[rng.permutation(len(rows)), column]
            answer = np.asarray(model.predict(shuffled))
            if answer.ndim == 2 and answer.shape[1] == 1:
                answer = answer[:, 0]
            permuted.append(answer.tolist())
        result["evaluation"] = {
            "ok": True,
            "predictions": predictions.tolist(),
            "probabilities": None if probabilities is None else np.asarray(probabilities).tolist(),
            "classes": classes,
            "permuted": permuted,
        }
    except BaseException as exc:
        result["evaluation"] = {"ok": False, "error": _error(exc)}


def _finish(result: dict) -> None:
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    os.write(RESULT_FD, (json.dumps(result, default=str) + "\n").encode())


if __name__ == "__main__":
    main()
