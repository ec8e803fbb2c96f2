"""ipywidgets front-ends for the plotting functions of :mod:`coursekit.core.plots`.

Two shapes cover the course:

* :func:`interactive_plot` redraws a cheap plot whenever a control moves;
* :class:`RunComparer` runs an experiment (training, seconds or more) only when its
  button is pressed, keeps every run, and plots them side by side.

A notebook cell shows the widget *and* the default figure drawn by the plain plot
function, so headless runs and HTML exports keep a plot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as W
import matplotlib.pyplot as plt
from IPython.display import display
from matplotlib.figure import Figure


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

    def redraw(**values: Any) -> None:
        _show(out, plot(**values))

    W.interactive_output(redraw, controls)
    return W.VBox([W.HBox(list(controls.values())), out])


class RunComparer(W.VBox):
    """Run ``run(**values)`` on a button press and plot every run so far with ``plot(runs)``.

    ``runs`` maps a label made from the control values (e.g. ``"lr=0.1, width=1.0"``)
    to what ``run`` returned; pressing the button again with the same values does
    not recompute. "Clear" forgets all runs.
    """

    def __init__(self, run: Callable[..., Any], plot: Callable[[Mapping[str, Any]], Figure],
                 controls: Mapping[str, W.ValueWidget], description: str = "Run") -> None:
        self.run, self.plot, self.controls = run, plot, dict(controls)
        self.runs: dict[str, Any] = {}
        self.run_button = W.Button(description=description, button_style="primary", icon="play")
        self.clear_button = W.Button(description="Clear", icon="trash")
        self.status = W.HTML()
        self.output = W.Output()
        self.run_button.on_click(lambda _: self.run_once())
        self.clear_button.on_click(lambda _: self.clear())
        bar = W.HBox([*self.controls.values(), self.run_button, self.clear_button, self.status])
        super().__init__([bar, self.output])

    def label(self) -> str:
        return ", ".join(f"{k}={w.value}" for k, w in self.controls.items())

    def run_once(self) -> None:
        label = self.label()
        if label not in self.runs:
            self.status.value = f"running {label} …"
            self.runs[label] = self.run(**{k: w.value for k, w in self.controls.items()})
        self.status.value = f"{len(self.runs)} run(s)"
        _show(self.output, self.plot(self.runs))

    def clear(self) -> None:
        self.runs.clear()
        self.status.value = ""
        self.output.clear_output()
