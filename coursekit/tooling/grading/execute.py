"""The driver: run one assembled notebook in a student's kernel, cell by cell, reporting as it goes.

Run as ``python -m coursekit.tooling.grading.execute`` by :mod:`.grade`, one process per
attempt. It reads its job (the notebook and the limits) as JSON from stdin, starts the
kernel (:mod:`.kernel`; inside the sandbox of :mod:`.sandbox` when asked), and writes
one JSON line per event to a pipe only the grader reads (its descriptor in
``$COURSEKIT_RESULT_FD``; the kernel does not inherit it):

* ``{"start": i}`` before cell ``i`` runs, ``{"done": i, "cell": {...}}`` after, with its
  outputs (long ones cut) and the seconds it took (``metadata.coursekit.seconds``);
* ``{"stopped": i, "reason": ...}`` when cell ``i`` ran past its limit or the kernel died
  (``i`` is ``None`` when the kernel did not start), and nothing more runs;
* ``{"end": true}`` when every cell has run.

The driver holds the notebook in memory and writes no file the kernel could reach: the
kernel's working folder is a scratch folder of its own, it talks to the driver over Unix
sockets in a folder of their own, and in the sandbox it sees neither the driver's files
nor its process. If the driver itself dies, the last ``start`` without its ``done`` tells
the grader which cell was running.

Each cell's limit is ``metadata.coursekit.timeout`` (set by the grader from the time the
solution took), else ``cell_timeout``. Errors in a cell are recorded and execution goes on.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    # jsonschema, imported by nbformat, compiles an RFC 3987 grammar at import when rfc3987-syntax
    # is installed: a second for every driver, for a format check nbformat never makes
    sys.modules.setdefault("rfc3987_syntax", None)

import nbformat

from coursekit.tooling.grading.kernel import die_with_parent

MAX_OUTPUT_CHARS = 20_000
KERNEL_NAME = "coursekit-graded"
LAUNCH = "from coursekit.tooling.grading import kernel; kernel.main()"


def truncate(cell: nbformat.NotebookNode) -> None:
    """Keep the executed notebook readable: long text outputs are cut."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and len(out.get("text", "")) > MAX_OUTPUT_CHARS:
            out["text"] = out["text"][:MAX_OUTPUT_CHARS] + "\n… [output truncated by the grader]\n"
        data = out.get("data", {})
        for mime in ("text/plain", "text/html"):
            if isinstance(data.get(mime), str) and len(data[mime]) > MAX_OUTPUT_CHARS:
                data[mime] = data[mime][:MAX_OUTPUT_CHARS] + "\n… [output truncated by the grader]"


def limit(cell: nbformat.NotebookNode, default: int) -> int:
    """The time limit of ``cell`` in seconds: its ``metadata.coursekit.timeout``, else ``default``."""
    return int(cell.get("metadata", {}).get("coursekit", {}).get("timeout") or default)


def kernel_argv(job: dict) -> list[str]:
    """The command that starts the student's kernel: limited, and in the sandbox when asked.

    Built by the grader, which knows the sandbox's folders (asking a fresh interpreter for
    them takes a second), and passed in the job as ``kernel_argv``."""
    from coursekit.tooling.grading import sandbox

    argv = [sys.executable, "-c", LAUNCH, "--memory", str(job["memory_bytes"]), "--cpu", str(job["cpu_seconds"]),
            "--preload", ",".join(job.get("preload", [])), "-f", "{connection_file}"]
    if job["sandboxed"]:
        argv = sandbox.command(argv, job["scratch"], also_writable=(job["channel"],))
    return argv


def _client(job: dict, nb: nbformat.NotebookNode):
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    specs = Path(job["private"]) / "kernels"
    (specs / KERNEL_NAME).mkdir(parents=True, exist_ok=True)
    (specs / KERNEL_NAME / "kernel.json").write_text(json.dumps(
        {"argv": job["kernel_argv"], "display_name": "graded", "language": "python"}))
    channel = Path(job["channel"])
    km = AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(specs)]),
                       transport="ipc", ip=str(channel / "k"), connection_file=str(channel / "kernel.json"))
    timeout = int(job["cell_timeout"])
    return NotebookClient(nb, km=km, timeout=timeout, timeout_func=lambda cell: limit(cell, timeout),
                          allow_errors=True, interrupt_on_timeout=False, startup_timeout=120)


def run(job: dict, emit) -> None:
    """Execute the job's notebook, calling ``emit(event)`` for each event (see the module's doc)."""
    from coursekit.tooling.grading import sandbox
    from coursekit.tooling.polling import patient_polling

    patient_polling()
    nb = nbformat.from_dict(job["notebook"])
    client = _client(job, nb)
    env = sandbox.environment({"MPLBACKEND": "Agg", "HOME": job["scratch"]})
    with open(Path(job["private"]) / "kernel.log", "ab") as log:
        try:
            client.start_new_kernel(env=env, cwd=job["scratch"], stdout=log, stderr=log)
            client.start_new_kernel_client()
        except Exception as err:  # the kernel did not start: nothing of the student's ran
            emit({"stopped": None, "reason": f"the kernel did not start: {type(err).__name__}: {str(err)[:300]}"})
            return
    try:
        _run_cells(client, nb, emit)
    finally:  # no polite shutdown: the kernel (and its sandbox) is killed
        process = client.km.provisioner.process if client.km.provisioner else None
        if process is not None:
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)  # and what it started in its session
            process.kill()
            process.wait()


def _run_cells(client, nb: nbformat.NotebookNode, emit) -> None:
    """Run the code cells in order, until one stops the run (a timeout, a dead kernel)."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        emit({"start": index})
        began = time.monotonic()
        try:
            client.execute_cell(cell, index)
        except CellTimeoutError:
            emit({"stopped": index, "reason": f"ran longer than its limit of {limit(cell, client.timeout)}s"})
            return
        except DeadKernelError:
            emit({"stopped": index, "reason": "stopped the kernel (crash, exit or out of memory)"})
            return
        cell.metadata.setdefault("coursekit", {})["seconds"] = round(time.monotonic() - began, 3)
        truncate(cell)
        emit({"done": index, "cell": cell})
    emit({"end": True})


def main() -> int:
    job = json.loads(sys.stdin.read())
    fd = int(os.environ.pop("COURSEKIT_RESULT_FD"))
    os.set_inheritable(fd, False)  # the kernel never gets the grader's pipe
    out = os.fdopen(fd, "w")

    def emit(event: dict) -> None:
        out.write(json.dumps(event) + "\n")
        out.flush()

    die_with_parent()  # the grader's death kills this driver; the kernel dies with the driver
    try:
        run(job, emit)
    finally:
        out.close()
        os._exit(0)  # the kernel is dead; skip tearing down the messaging threads


if __name__ == "__main__":
    sys.exit(main())
