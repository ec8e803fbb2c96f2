"""Releasing and grading labs: ``coursekit release`` and ``coursekit grade``.

* :mod:`.labfmt` -- the lab format: cell roles in metadata, solution regions, bundles;
* :mod:`.checks` -- hidden checks: a *probe* run in the student's kernel gathers
  evidence, a *judge* run in the grader's own process decides;
* :mod:`.execute` -- running one notebook so that hangs and crashes cost one cell, not
  the whole notebook (the worker process);
* :mod:`.release`, :mod:`.grade` -- the two commands.
"""
