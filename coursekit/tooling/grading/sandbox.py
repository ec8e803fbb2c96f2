"""The grading sandbox: a student's kernel sees its own scratch folder and nothing private.

Each submission's kernel runs under bubblewrap (``bwrap``); the driver that sends it the
cells and reads its outputs (:mod:`.execute`) stays outside, out of its sight. The kernel gets:

* a file system built from an allow-list, all read-only: the operating system
  (``/usr`` and its links, a few files of ``/etc``), the Python installation and the
  virtual environment, the ``coursekit`` package and the course's data folders. The
  grader bundle, the hidden checks, the lab sources, the grades folder, the other
  submissions, the home folder and ``/tmp`` are not there at all;
* the scratch folder writable, the folder of its sockets to the driver, and a private,
  empty ``/tmp``;
* no network (a new network namespace: it talks to the driver over Unix sockets), its
  own PID namespace (it sees no process of the grader's and cannot signal one; its
  parent is the sandbox's init, which ignores its signals; when it ends, every process
  it started is killed), its own IPC and host name, no capabilities (root inside cannot
  remount or raise its limits), a new session (no keystrokes into the grader's
  terminal), and death with the driver.

:func:`problem` says whether bubblewrap works here; ``python -m coursekit.tooling.grading.sandbox``
(run by ``make setup``) installs it when it can (root with apt) and says so.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = "bubblewrap"
NAMESPACES = ("--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try")
# Of /etc, only what the dynamic linker, Python and Jupyter read: no shadow file, no keys.
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf", "hosts",
       "host.conf", "localtime", "timezone", "mime.types", "alternatives", "fonts")
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# Environment variables a kernel keeps; everything else (tokens, keys, paths) is dropped.
ENVIRONMENT = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "PYTHONPATH", "PYTHONHASHSEED",
               "VIRTUAL_ENV", "JUPYTER_PATH", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES",
               "COURSEKIT_DATA", "COURSEKIT_SCALE")


class SandboxUnavailable(RuntimeError):
    """Bubblewrap is missing or cannot create namespaces here."""


_PROBE = ("import importlib.util, json, sys, sysconfig\n"
          "spec = importlib.util.find_spec('coursekit')\n"
          "print(json.dumps([sys.prefix, sys.base_prefix, *sysconfig.get_paths().values(), *sys.path[1:],"
          " *spec.submodule_search_locations]))")


@functools.cache
def readable_paths() -> tuple[Path, ...]:
    """The folders a kernel may read: its Python, packages and ``coursekit``, and the data.

    Asked of a fresh interpreter started as a kernel is (not of the grader's ``sys.path``,
    which may hold the course's own folder and with it the lab sources).
    """
    from coursekit.core import data

    with tempfile.TemporaryDirectory(prefix="coursekit-sandbox-") as tmp:
        out = subprocess.run([sys.executable, "-c", _PROBE], cwd=tmp, env=environment(),
                             capture_output=True, text=True, check=True).stdout
    found = {Path(p) for p in json.loads(out)} | {data.cache_dir(), data.REPO_DATA}
    # a path entry that is the course's own folder (PYTHONPATH=. in a checkout) holds the lab
    # sources and their solutions: of it, only the package is mounted
    found = {p / "coursekit" if (p / "coursekit" / "__init__.py").is_file() else p for p in found}
    real = {p.resolve() for p in found if p.exists()} | {p for p in found if p.exists()}
    real = {p for p in real if not p.is_relative_to("/usr")}
    # a folder inside another one already listed needs no mount of its own
    return tuple(sorted(p for p in real if not any(p != q and p.is_relative_to(q) for q in real)))


def _system_args() -> list[str]:
    args: list[str] = []
    for top in SYSTEM:
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for name in ETC:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for device in sorted(glob.glob("/dev/nvidia*")):  # a GPU grader keeps its GPU
        args += ["--dev-bind-try", device, device]
    return args


def command(argv: list[str], workdir: str | Path, also_writable: tuple[str | Path, ...] = ()) -> list[str]:
    """``argv`` wrapped in bubblewrap, with ``workdir`` (its working and home folder) and
    ``also_writable`` as its only writable folders."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(f"bwrap is not installed; {ADVICE}")
    workdir = str(Path(workdir).resolve())
    args = [bwrap, *NAMESPACES, "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--ro-bind-try", "/sys", "/sys"]
    args += _system_args()
    for path in readable_paths():
        args += ["--ro-bind", str(path), str(path)]
    for path in (workdir, *(str(Path(p).resolve()) for p in also_writable)):
        args += ["--bind", path, path]
    # a kernel's parent is the sandbox's init (PID 1): it must not poll for a parent outside
    args += ["--chdir", workdir, "--setenv", "HOME", workdir, "--setenv", "TMPDIR", "/tmp",
             "--unsetenv", "JPY_PARENT_PID", "--"]
    return args + list(argv)


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a kernel starts with: :data:`ENVIRONMENT` of the grader's, and ``extra``."""
    return {k: v for k, v in os.environ.items() if k in ENVIRONMENT} | (extra or {})


ADVICE = ("install bubblewrap (`apt-get install bubblewrap`, as `make setup` does for root); in a "
          "container, allow it to create namespaces (see docs/grading.md); or grade with --no-sandbox, "
          "which every feedback file and the gradebook will then mention")


@functools.cache
def problem() -> str | None:
    """Why no sandbox can run here, or ``None`` when bubblewrap works (checked once per process)."""
    if shutil.which("bwrap") is None:
        return "bwrap is not installed"
    with tempfile.TemporaryDirectory(prefix="coursekit-sandbox-") as tmp:
        argv = command([sys.executable, "-c", "import coursekit"], tmp)
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=environment())
    if result.returncode != 0:
        return f"bwrap cannot run here ({result.stderr.strip()[-300:] or f'exit {result.returncode}'})"
    return None


def require() -> None:
    """Raise :class:`SandboxUnavailable`, saying what to do, when no sandbox can run here."""
    reason = problem()
    if reason is not None:
        raise SandboxUnavailable(f"cannot grade in a sandbox: {reason}; {ADVICE}")


def main() -> int:
    """``make setup``: install bubblewrap when possible, then say whether the sandbox works."""
    from coursekit.core import debian

    if shutil.which("bwrap") is None:
        debian.apt_install(PACKAGE)
    reason = problem()
    print("grading sandbox: " + ("bubblewrap works" if reason is None
                                 else f"unavailable: {reason}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
