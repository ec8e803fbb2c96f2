"""What one submission must not change for the others, and the grader's record of what it did.

In the sandbox a student's kernel cannot reach the grader's files at all. Without it
(``--no-sandbox``), or should something slip through, :class:`Guard` notices and undoes,
after every graded submission, a change to

* the submitted notebooks (each restored from the bytes read when the batch started);
* the grades folder: what the grader wrote (``grade.json``, ``feedback.md``,
  ``executed.ipynb``, ``gradebook.csv``) is written again;
* the installed ``coursekit`` package and Python's start-up hooks (``*.pth``,
  ``sitecustomize``, ``usercustomize`` in the site folders), which every later kernel
  would run: restored from a copy taken at the start, added files removed.

:class:`Journal` records which submissions are being graded, so that when the grader
itself is killed (by a submission, without the sandbox; or by a crash) the next run
knows which ones were in flight. Everything noticed goes into ``report.md`` for the
instructor.
"""

from __future__ import annotations

import compileall
import hashlib
import json
import os
import site
import threading
import time
from pathlib import Path

import coursekit
from coursekit.core import files

JOURNAL, REPORT = "in-progress.json", "report.md"
STARTUP_HOOKS = ("*.pth", "sitecustomize.py", "usercustomize.py")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _site_dirs() -> list[Path]:
    folders = [*site.getsitepackages(), site.getusersitepackages()]
    return [Path(p) for p in dict.fromkeys(folders) if Path(p).is_dir()]


def installed_files(package: Path | None = None, site_dirs: list[Path] | None = None) -> dict[Path, bytes]:
    """The files a later kernel would run: the ``coursekit`` package and the site start-up hooks."""
    package = package or Path(coursekit.__file__).parent
    found = {p: p.read_bytes() for p in package.rglob("*") if p.is_file()}
    for folder in _site_dirs() if site_dirs is None else site_dirs:
        for pattern in STARTUP_HOOKS:
            found |= {p: p.read_bytes() for p in folder.glob(pattern) if p.is_file()}
    return found


class Guard:
    """Snapshots taken when a batch starts; :meth:`check` restores what changed and says what."""

    def __init__(self, submissions: dict[Path, bytes], package: Path | None = None,
                 site_dirs: list[Path] | None = None):
        self._where = (package or Path(coursekit.__file__).parent, site_dirs)
        # byte-compile now, so that importing a module later writes no new file into the package
        compileall.compile_dir(self._where[0], quiet=1, workers=1)
        self.submissions = {p: _digest(b) for p, b in submissions.items()}
        self._submitted = submissions
        self.installed = installed_files(*self._where)
        self._installed_digest = {p: _digest(b) for p, b in self.installed.items()}
        # restored with their times too, so that the byte code compiled from them stays valid
        self._mtimes = {p: p.stat().st_mtime_ns for p in self.installed}
        self.written: dict[Path, tuple[str, str]] = {}  # grades file → (digest, text the grader wrote)

    def write(self, path: Path, text: str) -> None:
        """Write one of the grader's files atomically and remember it."""
        files.write_text(path, text)
        self.written[path] = (_digest(text.encode()), text)

    def check(self) -> tuple[list[str], bool]:
        """Restore every changed file; return what changed and whether installed files did."""
        changes = []
        for path, digest in self.submissions.items():
            if not path.is_file() or _digest(path.read_bytes()) != digest:
                path.write_bytes(self._submitted[path])
                changes.append(f"the submitted notebook {path.name}")
        for path, (digest, text) in self.written.items():
            try:
                same = _digest(path.read_bytes()) == digest
            except OSError:
                same = False
            if not same:
                files.write_text(path, text)
                changes.append(f"the grader's {path.parent.name}/{path.name}" if path.name != "gradebook.csv"
                               else "the gradebook")
        installed = []
        now = installed_files(*self._where)
        for path, data in self.installed.items():
            if path not in now or _digest(now[path]) != self._installed_digest[path]:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                os.utime(path, ns=(self._mtimes[path], self._mtimes[path]))
                installed.append(str(path))
        for path in set(now) - set(self.installed):
            path.unlink(missing_ok=True)
            installed.append(f"{path} (added)")
        changes += [f"the installed file {p}" for p in installed]
        return changes, bool(installed)


class Journal:
    """``in-progress.json`` in the grades folder: student → how many runs started grading it and
    never finished (the grader was killed meanwhile)."""

    def __init__(self, out: Path):
        self.path = out / JOURNAL
        try:
            self.crashed: dict[str, int] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.crashed = {}
        self._counts = dict(self.crashed)
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def started(self, student: str) -> None:
        with self._lock:
            self._counts[student] = self._counts.get(student, 0) + 1
            self._running.add(student)
            self._save()

    def finished(self, student: str) -> None:
        with self._lock:
            self._counts.pop(student, None)
            self._running.discard(student)
            self._save()

    def interrupted(self) -> None:
        """The instructor stopped the batch (Ctrl-C): what was being graded is not suspected of it."""
        with self._lock:
            for student in self._running:
                self._counts[student] -= 1
                if not self._counts[student]:
                    del self._counts[student]
            self._running.clear()
            self._save()

    def forget(self) -> None:
        """``--force``: start afresh."""
        with self._lock:
            self.crashed, self._counts = {}, {}
            self._save()

    def _save(self) -> None:
        if self._counts:
            files.write_text(self.path, json.dumps(self._counts))
        else:
            self.path.unlink(missing_ok=True)


class Report:
    """``report.md``: what the instructor should know about the batch beyond the scores."""

    def __init__(self, out: Path, lab: str, sandboxed: bool):
        self.path, self.events = out / REPORT, []
        self.header = [f"# Grading report: {lab}", "",
                       f"Started {time.strftime('%Y-%m-%d %H:%M:%S')}; "
                       + ("each kernel in the sandbox (bubblewrap)." if sandboxed else
                          "**without the sandbox** (`--no-sandbox`): the students' code could reach this machine."),
                       ""]

    def add(self, line: str) -> None:
        self.events.append(f"- {line}")
        self.save()

    def save(self, summary: list[str] = ()) -> None:
        body = list(summary) + (["", "## Events", "", *self.events] if self.events else
                                ["", "Nothing changed that the grader did not write; no submission stopped the grader."])
        files.write_text(self.path, "\n".join(self.header + body) + "\n")

