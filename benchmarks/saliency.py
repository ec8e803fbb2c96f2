"""Cost of each saliency score on LeNet-300-100 over 1 000 Fashion-MNIST examples.

Each score is timed side by side with one loss-gradient pass (interleaved repeats,
``sparse_speed.time_interleaved``) and reported as the median of the per-repeat ratios
``score / gradient``. The network is trained for one epoch first so the scores see a
network that has learned something. Last line (JSON): one key per score.
"""

from __future__ import annotations

import json

import torch

from coursekit import data, models, saliency, sparse_speed, train

EXAMPLES, REPEATS = 1_000, 5


def main() -> None:
    torch.manual_seed(0)
    ds = data.load("fashion_mnist", "ci", "cpu")
    net = models.build("lenet300_100", ds.input_shape, ds.num_classes, seed=0)
    train.fit(net, ds, epochs=1, progress=False)
    x, y = ds.x_train[:EXAMPLES], ds.y_train[:EXAMPLES]
    calls = {"gradient": lambda: saliency.loss_gradients(net, x, y)}
    calls |= {name: (lambda name=name: saliency.score(name, net, x, y)) for name in saliency.SALIENCIES}
    times = sparse_speed.time_interleaved(calls, repeats=REPEATS, number=1)
    ratios = {name: round(sparse_speed.paired_ratio(t, times["gradient"]), 2)
              for name, t in times.items() if name != "gradient"}
    gradient_ms = 1000 * sorted(times["gradient"])[REPEATS // 2]
    for name, r in ratios.items():
        print(f"{name:10s} {r:8.2f} × one gradient pass ({gradient_ms:.1f} ms)")
    print(json.dumps(ratios | {"gradient_ms": round(gradient_ms, 1)}))


if __name__ == "__main__":
    main()
