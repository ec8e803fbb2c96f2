import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from coursekit import data_oblivious, sparse_speed, why_sparsity

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _storage():
    return why_sparsity.storage_bytes(32, (0.1, 0.5, 1.0), bits=2, index_bits=3)


def _timing():
    """Hand-made times: CSR wins at 10 %, loses at 50 % and 100 %."""
    return pd.DataFrame({"size": 32, "density": [0.1, 0.5, 1.0], "dense_s": [1.0, 1.0, 1.0],
                         "csr_s": [0.5, 2.0, 4.0], "structured_s": [0.1, 0.5, 1.0],
                         "csr_speedup": [2.0, 0.5, 0.25], "structured_speedup": [10.0, 2.0, 1.0]})


def _methods():
    rows = [("dense", 1.0, 1000, 0.8, 0.8, 1.0, 1.0)]
    for m, speed in (("magnitude", 1.0), ("filters", 1.8), ("low rank", 1.1)):
        rows += [(m, 0.5, 500, 0.5, 0.78, 2.0, speed), (m, 0.2, 200, 0.2, 0.7, 5.0, speed * 1.5)]
    return pd.DataFrame(rows, columns=["method", "budget", "params", "test_acc", "test_acc_ft", "flop_reduction",
                                       "speedup"])


def test_synapse_density_says_what_is_published_and_what_is_approximate():
    fig = why_sparsity.plot_synapse_density(why_sparsity.synapse_density())
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "published mean ± SEM", "approximate (from the abstract's wording)"]
    assert "published values" in ax.get_title() and "Huttenlocher 1979" in fig.texts[0].get_text()
    assert ax.get_xscale() == "symlog" and "synapses / mm³" in ax.get_ylabel()


def test_storage_vs_density_marks_where_csr_stops_paying():
    fig = why_sparsity.plot_storage_vs_density(_storage(), 32)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "dense fp32 (a mask alone)" and len(labels) == 7
    edge = sparse_speed.csr_storage_break_even(32, 32)
    assert any(f"below {edge:.1%}" in t.get_text() for t in ax.texts)
    assert ax.get_yscale() == "log" and ax.get_xscale() == "log"
    with pytest.raises(ValueError, match=r"no rows with size = 64; the table has \[32\]"):
        why_sparsity.plot_storage_vs_density(_storage(), 64)


def test_matmul_speed_shows_times_and_the_break_even():
    fig = why_sparsity.plot_matmul_speed(_timing(), 32)
    left, right = fig.axes
    assert len(left.get_lines()) == 3
    edge = sparse_speed.break_even(_timing())
    assert any(f"{edge:.0%}" in t.get_text() for t in right.texts)
    with pytest.raises(ValueError, match="needs columns"):
        why_sparsity.plot_matmul_speed(_timing().drop(columns="csr_s"), 32)


def test_layer_cost_bars_for_one_size_and_density():
    fig = why_sparsity.plot_layer_cost(_storage(), _timing(), 32, 0.5)
    left, right = fig.axes
    assert len(left.patches) == 7 and len(right.patches) == 3
    assert any("100% of dense" in t.get_text() for t in left.texts)
    assert any("0.5× dense speed" in t.get_text() for t in right.texts)  # CSR: 1 / 2 at 50 %
    with pytest.raises(ValueError, match=r"no rows with density = 0.2"):
        why_sparsity.plot_layer_cost(_storage(), _timing(), 32, 0.2)


def test_accuracy_vs_parameters_one_colour_per_method_two_styles():
    ax = data_oblivious.plot_accuracy_vs_parameters(_methods()).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["magnitude", "filters", "low rank", "fine-tuned", "not fine-tuned", "dense network"]
    assert ax.get_xscale() == "log"


def test_speedup_vs_flops_labels_budgets_and_draws_the_ideal():
    ax = data_oblivious.plot_speedup_vs_flops(_methods()).axes[0]
    assert "ideal: time ∝ FLOPs" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted({t.get_text() for t in ax.texts}) == ["20%", "50%"]


def test_compression_stages_bars_and_ratios():
    table = pd.DataFrame({"stage": ["dense fp32", "pruned", "quantised", "Huffman coded"],
                          "bytes": [4000, 1500, 400, 300], "ratio": [1.0, 4000 / 1500, 10.0, 4000 / 300],
                          "test_acc": [0.9, 0.88, 0.87, 0.87]})
    left, right = data_oblivious.plot_compression_stages(table).axes
    assert [t.get_text() for t in left.get_yticklabels()] == ["Huffman coded", "quantised", "pruned", "dense fp32"]
    assert any("13.3×" in t.get_text() for t in left.texts) and any("87.0%" in t.get_text() for t in right.texts)


def test_knob_view_marks_the_chosen_settings():
    grid = pd.DataFrame({"method": ["filters"] * 3 + ["low rank"] * 2, "knob": [0.0, 0.5, 0.75, 0.25, 1.0],
                         "params": [100, 30, 10, 40, 100], "test_acc": [0.9, 0.5, 0.2, 0.4, 0.9],
                         "speedup": [1.0, 1.8, 2.5, 0.9, 1.0]})
    fig = data_oblivious.plot_knob_view(grid, filters=0.5, rank=0.25)
    assert len(fig.axes) == 6 and fig.axes[3].get_title() == "low rank: accuracy, not fine-tuned"
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == ["50%", "30%", "1.80×", "40%", "40%", "0.90×"]
    with pytest.raises(ValueError, match=r"no rows with knob = 0.3"):
        data_oblivious.plot_knob_view(grid, 0.3, 0.25)
    with pytest.raises(ValueError, match=r"no rows with method = 'low rank'"):
        data_oblivious.plot_knob_view(grid[grid["method"] == "filters"], 0.5, 0.5)


def test_time_by_layer_type_two_bars_per_type():
    table = pd.DataFrame({"layer type": ["MaxPool2d", "Conv2d"], "time_s": [2.0, 1.0],
                          "time_share": [2 / 3, 1 / 3], "flop_share": [0.0, 1.0]})
    ax = data_oblivious.plot_time_by_layer_type(table).axes[0]
    assert len(ax.patches) == 4 and [t.get_text() for t in ax.get_yticklabels()] == ["Conv2d", "MaxPool2d"]
