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
