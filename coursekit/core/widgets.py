"""ipywidgets front-ends for the plotting functions of :mod:`coursekit.core.plots`.

Two shapes cover the course:

* :func:`interactive_plot` redraws a cheap plot whenever a control moves;
* :class:`RunComparer` runs an experiment (training, seconds or more) only when its
  button is pressed, keeps every run, and plots them side by side.

Each widget carries a static copy of what it first shows (:func:`snapshot`) in its display data:
JupyterLab draws the live widget, while an export with no live kernel (nbconvert HTML, the course
site, a notebook opened without running it) falls back to the copy. So a notebook shows one figure,
never a widget followed by a duplicate that the controls do not change.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as W
import matplotlib.pyplot as plt
from IPython.core.formatters import DisplayFormatter
from IPython.display import display
from matplotlib.figure import Figure


def snapshot(shown: Any) -> dict[str, Any]:
    """A static MIME bundle of ``shown``: a figure as PNG (as the inline backend draws it), anything else
    by its ``_repr_*_`` methods; ``text/plain`` is left out (the widget's own text comes first)."""
    if isinstance(shown, Figure):
        buffer = io.BytesIO()
        shown.savefig(buffer, format="png", bbox_inches="tight")
        return {"image/png": base64.b64encode(buffer.getvalue()).decode("ascii")}
    data, _ = DisplayFormatter().format(shown)
    return {k: v for k, v in data.items() if k != "text/plain"}


class _WithSnapshot:
    """Mixin for a widget whose display data also holds :attr:`static` (see the module's docstring)."""

    static: dict[str, Any]

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return {**self.static, **super()._repr_mimebundle_(**kwargs)}


class _Explorer(_WithSnapshot, W.VBox):
    pass


def _show(out: W.Output, shown: Any) -> None:
    out.clear_output(wait=True)
    with out:
        display(shown)
    if isinstance(shown, Figure):
        plt.close(shown)


def interactive_plot(plot: Callable[..., Any], **controls: W.ValueWidget) -> W.VBox:
    """Controls above the figure ``plot(**values)``, redrawn on every change (``plot`` may also return
    anything else IPython displays, e.g. ``IPython.display.Markdown``)."""
    out = W.Output()
    explorer = _Explorer([W.HBox(list(controls.values())), out])
    explorer.static = {}

    def redraw(**values: Any) -> None:
        shown = plot(**values)
        if not explorer.static:  # the first drawing: the controls' initial values
            explorer.static = snapshot(shown)
        _show(out, shown)

    W.interactive_output(redraw, controls)
    return explorer


class RunComparer(_WithSnapshot, W.VBox):
    """Run ``run(**values)`` on a button press and plot every run so far with ``plot(runs)``.

    ``runs`` maps a label made from the control values (e.g. ``"lr=0.1, width=1.0"``)
    to what ``run`` returned; pressing the button again with the same values does
    not recompute. "Clear" forgets all runs. Its static copy is the latest figure.
    """

    def __init__(self, run: Callable[..., Any], plot: Callable[[Mapping[str, Any]], Figure],
                 controls: Mapping[str, W.ValueWidget], description: str = "Run") -> None:
        self.run, self.plot, self.controls = run, plot, dict(controls)
        self.runs: dict[str, Any] = {}
        self.static: dict[str, Any] = {}
        self.run_button = W.Button(description=description, button_style="primary", icon="play")
        self.clear_button = W.Button(description="Clear", icon="trash")
        self.status = W.HTML()
        self.output = W.Output()
        self.run_button.on_click(lambda _: self.run_once())
        self.clear_button.on_click(lambda _: self.clear())
        bar = W.HBox([*self.controls.values(), self.run_button, self.clear_button, self.status])
        super().__init__([bar, self.output])

    def label(self) -> str:
        """The runs' key and legend entry: each control's value, floats to three significant digits."""
        return ", ".join(f"{k}={w.value:.3g}" if isinstance(w.value, float) else f"{k}={w.value}"
                         for k, w in self.controls.items())

    def run_once(self) -> None:
        label = self.label()
        if label not in self.runs:
            self.status.value = f"running {label} …"
            self.runs[label] = self.run(**{k: w.value for k, w in self.controls.items()})
        self.status.value = f"{len(self.runs)} run(s)"
        shown = self.plot(self.runs)
        self.static = snapshot(shown)
        _show(self.output, shown)

    def clear(self) -> None:
        self.runs.clear()
        self.status.value = ""
        self.static = {}
        self.output.clear_output()
