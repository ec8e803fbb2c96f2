import matplotlib

matplotlib.use("Agg")

import ipywidgets as W
import matplotlib.pyplot as plt

from coursekit import widgets


def _plot(**values):
    fig, ax = plt.subplots()
    ax.set_title(repr(sorted(values.items())))
    return fig


def test_interactive_plot_redraws_on_change():
    calls = []

    def plot(a):
        calls.append(a)
        return _plot(a=a)

    slider = W.IntSlider(value=1, min=0, max=5)
    box = widgets.interactive_plot(plot, a=slider)
    assert calls == [1] and isinstance(box.children[1], W.Output)
    slider.value = 3
    assert calls == [1, 3]


def test_interactive_plot_shows_text_too_and_closes_only_figures():
    from IPython.display import Markdown

    picker = W.SelectMultiple(options=["a", "b"], value=("a",))
    box = widgets.interactive_plot(lambda chosen: Markdown(", ".join(chosen)), chosen=picker)
    picker.value = ("a", "b")
    assert isinstance(box.children[1], W.Output)
    before = len(plt.get_fignums())
    widgets.interactive_plot(lambda a: _plot(a=a), a=W.IntSlider(value=1))
    assert len(plt.get_fignums()) == before  # the figure was shown, then closed


def test_run_comparer_runs_on_click_and_caches():
    calls = []

    def run(lr, width):
        calls.append((lr, width))
        return lr * width

    shown = []
    comparer = widgets.RunComparer(run, lambda runs: shown.append(dict(runs)) or _plot(),
                                   {"lr": W.FloatSlider(value=0.1), "width": W.Dropdown(options=[1, 2])})
    assert calls == []  # nothing trains until the button is pressed
    comparer.run_button.click()
    comparer.run_button.click()
    assert calls == [(0.1, 1)] and comparer.runs == {"lr=0.1, width=1": 0.1}
    comparer.controls["width"].value = 2
    comparer.run_button.click()
    assert list(shown[-1]) == ["lr=0.1, width=1", "lr=0.1, width=2"]
    assert comparer.status.value == "2 run(s)"
    comparer.clear_button.click()
    assert comparer.runs == {}


def test_a_widget_carries_a_static_copy_of_its_first_figure():
    """JupyterLab draws the widget; an export without a kernel falls back to the PNG (no duplicate cell)."""
    import base64

    slider = W.IntSlider(value=1, min=0, max=5)
    box = widgets.interactive_plot(lambda a: _plot(a=a), a=slider)
    bundle = box._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    first = bundle["image/png"]
    assert base64.b64decode(first).startswith(b"\x89PNG")
    slider.value = 4
    assert box._repr_mimebundle_()["image/png"] == first  # the copy shows the initial values

    from IPython.display import Markdown

    text = widgets.interactive_plot(lambda a: Markdown(f"**{a}**"), a=W.IntSlider(value=2))
    assert text._repr_mimebundle_()["text/markdown"] == "**2**"


def test_run_comparer_labels_floats_briefly_and_its_copy_is_the_latest_figure():
    comparer = widgets.RunComparer(lambda lr: lr, lambda runs: _plot(n=len(runs)),
                                   {"lr": W.FloatLogSlider(value=10 ** -1.6, base=10, min=-3, max=0)})
    assert "image/png" not in comparer._repr_mimebundle_()  # nothing run, nothing to show
    comparer.run_button.click()
    assert list(comparer.runs) == ["lr=0.0251"]
    assert "image/png" in comparer._repr_mimebundle_()
    comparer.clear_button.click()
    assert "image/png" not in comparer._repr_mimebundle_()


def test_a_finished_notebook_bar_is_hidden_not_closed():
    """Closing the widget of a short loop before the browser draws it is a "model not found" error."""
    from tqdm import notebook

    from coursekit import progress

    class Bar(progress.HiddenWhenDone, notebook.tqdm):
        pass

    done = Bar(range(3), leave=False)
    list(done)
    assert done.container.comm is not None and done.container.layout.display == "none"
    stopped = Bar(range(3), leave=False)
    next(iter(stopped))
    stopped.close()
    assert stopped.container.layout.display != "none"  # an interrupted bar stays, red
    plain = notebook.tqdm(range(3), leave=False)
    list(plain)
    assert plain.container.comm is None  # what tqdm itself does: the widget is closed
