"""What moving the topology costs: SET and RigL epochs against static masked training, and K = 8 SET runs batched.

LeNet-300-100 on Fashion-MNIST (``cpu`` scale, 20 000 images, 334 steps of 60 per epoch),
Erdős–Rényi masks with ε = 20 (about 4 % of the weights). Each call trains a fresh copy
for one epoch; the calls are timed side by side (``sparse_speed.time_interleaved``) and
compared by the median of their paired ratios. RigL updates every ΔT = 100 steps (its
paper's value). The topology update itself (one SET ``evolve``, one RigL ``update``) is
also timed against an epoch. Last line (JSON): the overheads and the batched speed-up.
"""

from __future__ import annotations

import copy
import json

import torch

from coursekit import budgets, data, dynamic_sparse, models, sparse_speed, train
from coursekit.core.batched import fit_batched

REPEATS, K, EPSILON = 3, 8, 20


def main() -> None:
    torch.manual_seed(0)
    ds = data.load("fashion_mnist", "cpu", "cpu")
    base = models.build("lenet300_100", ds.input_shape, ds.num_classes, seed=0)
    shapes = budgets.shapes_of(base)
    mask = budgets.random_mask(shapes, budgets.erdos_renyi(shapes, EPSILON), torch.Generator().manual_seed(0))
    steps = -(-len(ds.y_train) // 60)
    fit = dict(epochs=1, optimizer="adam", lr=1.2e-3, progress=False)

    def static():
        net = copy.deepcopy(base)
        train.fit(net, ds, hooks=[mask.hook(net)], **fit)

    def set_epoch():
        net = copy.deepcopy(base)
        train.fit(net, ds, hooks=[dynamic_sparse.SET(net, mask, generator=torch.Generator().manual_seed(0))], **fit)

    def rigl_epoch():
        net = copy.deepcopy(base)
        train.fit(net, ds, hooks=[dynamic_sparse.RigL(net, mask, total_steps=4 * steps, every=100)], **fit)

    def set_loop():
        for k in range(K):
            net = models.build("lenet300_100", ds.input_shape, ds.num_classes, seed=k)
            train.fit(net, ds, seed=k, hooks=[dynamic_sparse.SET(net, mask, generator=torch.Generator().manual_seed(k))],
                      **fit)

    def set_batched():
        nets = [models.build("lenet300_100", ds.input_shape, ds.num_classes, seed=k) for k in range(K)]
        hooks = [dynamic_sparse.SET(n, mask, generator=torch.Generator().manual_seed(k)) for k, n in enumerate(nets)]
        fit_batched(nets, ds, list(range(K)), topologies=hooks, **fit)

    net = copy.deepcopy(base)
    set_hook = dynamic_sparse.SET(net, mask, generator=torch.Generator().manual_seed(0))
    rigl_hook = dynamic_sparse.RigL(net, mask, total_steps=4 * steps)
    train.fit(net, ds, epochs=1, optimizer="adam", lr=1.2e-3, progress=False, hooks=[mask.hook(net)])
    x, y = ds.x_train[:60], ds.y_train[:60]
    torch.nn.functional.cross_entropy(net(x), y).backward()
    grads = {n: p.grad for n, p in net.named_parameters() if n in mask}
    times = sparse_speed.time_interleaved({
        "static": static, "set": set_epoch, "rigl": rigl_epoch,
        "evolve": set_hook.evolve, "update": lambda: rigl_hook.update(grads, 0.3),
    }, repeats=REPEATS, number=1)
    loops = sparse_speed.time_interleaved({"loop": set_loop, "batched": set_batched}, repeats=REPEATS, number=1)
    result = {
        "set_epoch_over_static": round(sparse_speed.paired_ratio(times["set"], times["static"]), 3),
        "rigl_epoch_over_static": round(sparse_speed.paired_ratio(times["rigl"], times["static"]), 3),
        "set_evolve_share_of_epoch": round(sparse_speed.paired_ratio(times["evolve"], times["static"]), 4),
        "rigl_update_share_of_epoch": round(sparse_speed.paired_ratio(times["update"], times["static"]), 4),
        "static_epoch_s": round(sorted(times["static"])[REPEATS // 2], 2),
        f"batched_speedup_k{K}": round(sparse_speed.paired_ratio(loops["loop"], loops["batched"]), 2),
    }
    for name, value in result.items():
        print(f"{name:30s} {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
