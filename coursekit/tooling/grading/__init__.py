"""Releasing and grading labs: ``coursekit release`` and ``coursekit grade``.

* :mod:`.labfmt` -- the lab format: cell roles in metadata, solution regions, bundles;
* :mod:`.checks` -- hidden checks: a *probe* run in the student's kernel gathers
  evidence, a *judge* run in the grader's own process decides;
* :mod:`.kernel` -- the student's kernel: its limits, and the probe runner inside it;
* :mod:`.execute` -- the driver: runs one notebook in that kernel from outside the sandbox
  and reports each cell, so that hangs and crashes cost one cell, not the notebook;
* :mod:`.sandbox` -- bubblewrap around each kernel;
* :mod:`.integrity` -- what one submission must not change for the others;
* :mod:`.release`, :mod:`.grade` -- the two commands.
"""
