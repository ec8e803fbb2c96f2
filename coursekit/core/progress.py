"""Progress bars for the whole course: ``tqdm.auto``, with notebook bars that are hidden, never closed.

In a notebook, ``tqdm.auto`` draws an ipywidgets bar; with ``leave=False`` it *closes* that widget when
the loop ends. A loop shorter than the browser's round trip closes the widget before JupyterLab has
drawn it, and the browser console reports "widget model not found" for every such bar. :class:`tqdm`
hides a finished ``leave=False`` bar instead (``layout.display = "none"``): nothing is left on the page
and every model the page was told about still exists. Outside a notebook it is ``tqdm.auto.tqdm``.
"""

from __future__ import annotations

from tqdm.auto import tqdm as _auto_tqdm

__all__ = ["HiddenWhenDone", "tqdm"]


class HiddenWhenDone:
    """Mixin for a tqdm class: a notebook bar with ``leave=False`` is hidden when done, not closed."""

    def close(self) -> None:
        container = getattr(self, "container", None)  # only notebook bars have one
        hide = container is not None and not self.leave and not self.disable
        if hide:
            self.leave = True  # close as a kept bar (the widget stays open) ...
        super().close()
        if hide and self.n >= (self.total or 0):  # ... then hide it, unless it stopped early (red: kept)
            container.layout.display = "none"


class tqdm(HiddenWhenDone, _auto_tqdm):
    """``tqdm.auto.tqdm`` (a widget in a notebook, text elsewhere) with :class:`HiddenWhenDone`."""
