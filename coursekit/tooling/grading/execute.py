"""Run one notebook so that a hang or a crash costs one cell, not the rest of the notebook.

Papermill stops at the first failing cell. Here it runs with ``allow_errors`` (an
exception in a cell is recorded and execution goes on), and when a student's cell hangs
past its time limit or kills the kernel (``os._exit``, a segfault, running out of
memory), that cell is replaced by a comment saying so and the notebook is run again from
the top in a fresh kernel, up to ``max_attempts`` times.

Each cell's limit is ``metadata.coursekit.timeout`` (set by the grader from the time the
solution took), else ``cell_timeout``. A cell marked ``locked`` is the instructor's: when
it times out or stops the kernel, the student is never charged. It is run again once with
four times its limit; if it fails again the notebook is reported as not gradable here
(an incident with ``"environment": true``), and the grader tries it later, alone.

Run as ``python -m coursekit.tooling.grading.execute JOB.json`` by :mod:`coursekit.tooling.grading.grade`,
inside its own process (in the sandbox of :mod:`.sandbox`) with a memory and a CPU-time
limit, so a submission cannot take the grader with it.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

import nbformat

MAX_OUTPUT_CHARS = 20_000


def _culprit(nb: nbformat.NotebookNode) -> int | None:
    """Index, in the notebook as given to papermill, of the cell running when execution stopped.

    That is the last cell started; papermill's injected parameters cell is not counted.
    """
    index = None
    position = 0
    for cell in nb.cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.get("metadata", {}).get("papermill", {}).get("start_time"):
            index = position
        position += 1
    return index


def _truncate(nb: nbformat.NotebookNode) -> None:
    """Keep the executed notebook readable: long text outputs are cut."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and len(out.get("text", "")) > MAX_OUTPUT_CHARS:
                out["text"] = out["text"][:MAX_OUTPUT_CHARS] + "\n… [output truncated by the grader]\n"
            data = out.get("data", {})
            for mime in ("text/plain", "text/html"):
                if isinstance(data.get(mime), str) and len(data[mime]) > MAX_OUTPUT_CHARS:
                    data[mime] = data[mime][:MAX_OUTPUT_CHARS] + "\n… [output truncated by the grader]"


LOCKED_RETRY_FACTOR = 4


def _limit(cell: nbformat.NotebookNode, default: int) -> int:
    """The time limit of ``cell`` in seconds: its ``metadata.coursekit.timeout``, else ``default``."""
    return int(cell.get("metadata", {}).get("coursekit", {}).get("timeout") or default)


def run(notebook: Path, output: Path, cell_timeout: int, max_attempts: int = 6,
        parameters: dict | None = None) -> list[dict]:
    """Execute ``notebook`` into ``output``; return incidents (cells removed or retried, and why)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from coursekit.tooling.notebooks import patient_polling

    patient_polling()
    incidents: list[dict] = []
    current = notebook
    for attempt in range(1, max_attempts + 1):
        try:
            papermill.execute_notebook(str(current), str(output), parameters=parameters or {},
                                       kernel_name="python3", cwd=str(output.parent),
                                       progress_bar=False, execution_timeout=cell_timeout,
                                       timeout_func=lambda cell: _limit(cell, cell_timeout),
                                       allow_errors=True, interrupt_on_timeout=False)
            break
        except PapermillExecutionError:
            break  # raised at the end when some cell failed: every cell has run
        except (RuntimeError, TimeoutError, OSError) as err:
            executed = nbformat.read(output, as_version=4)
            index = _culprit(executed)
            if index is None:
                incidents.append({"cell": None, "reason": f"execution stopped: {type(err).__name__}: "
                                                          f"{str(err)[:300]}", "environment": True})
                break
            source = nbformat.read(current, as_version=4)
            cell = source.cells[index]
            role = cell.metadata.setdefault("coursekit", {})
            limit = _limit(cell, cell_timeout)
            reason = (f"ran longer than its limit of {limit}s"
                      if "timed out" in str(err).lower() or isinstance(err, TimeoutError)
                      else "stopped the kernel (crash, exit or out of memory)")
            incident = {"cell": index, "id": role.get("id"), "reason": reason, "attempt": attempt}
            if role.get("locked") and not role.get("retried"):
                role["timeout"], role["retried"] = LOCKED_RETRY_FACTOR * limit, True
                incidents.append(incident | {"reason": f"the instructor's cell {reason}; run again with a "
                                                       f"limit of {role['timeout']}s (not charged to the student)"})
            elif role.get("locked"):
                incidents.append(incident | {"reason": f"the instructor's cell {reason} twice: the grader's "
                                                       "environment, not the submission", "environment": True})
                break
            else:
                incidents.append(incident)
                cell.source = f"# removed by the grader: this cell {reason}\n"
            current = output.with_name(f"attempt{attempt}.ipynb")
            nbformat.write(source, current)
    else:
        incidents.append({"cell": None, "reason": f"gave up after {max_attempts} attempts: too many cells hang or crash"})
    if output.is_file():
        executed = nbformat.read(output, as_version=4)
        _truncate(executed)
        nbformat.write(executed, output)
    return incidents


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    # inherited by the kernel and whatever it starts; each process counts its own CPU time
    for limit, key in ((resource.RLIMIT_AS, "memory_bytes"), (resource.RLIMIT_CPU, "cpu_seconds")):
        if job.get(key):
            resource.setrlimit(limit, (int(job[key]), int(job[key])))
    os.environ["HOME"] = job["workdir"]
    incidents = run(Path(job["notebook"]), Path(job["output"]), int(job["cell_timeout"]),
                    int(job.get("max_attempts", 6)), job.get("parameters"))
    tmp = Path(job["incidents"]).with_suffix(".tmp")
    tmp.write_text(json.dumps(incidents))
    os.replace(tmp, job["incidents"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
