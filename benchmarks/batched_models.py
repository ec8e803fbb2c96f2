"""K LeNet-300-100 members trained batched (one vmapped model) vs one after another.

Same data and minibatches for both, interleaved and repeated (medians); the ratio is
the loop's time over the batched time for the same K members × steps (Adam, batch 60).
Last line: JSON with ``batched_speedup_k1``, ``batched_speedup_k8``, ``batched_speedup_k32``
for LeNet-300-100 on 28×28 inputs, and ``batched_speedup_k32_small_mlp`` for a 64-32-10
MLP on 8×8 inputs, where per-step overhead, not arithmetic, dominates.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from coursekit import models, runtime
from coursekit.core.batched import BatchedModels
from coursekit.core.train import make_optimizer

BATCH = 60


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def loop_time(members, xs, ys, device) -> float:
    opts = [make_optimizer("adam", m.parameters(), 1.2e-3) for m in members]
    start = time.perf_counter()
    for step in range(xs.shape[1]):
        for k, (m, opt) in enumerate(zip(members, opts, strict=True)):
            loss = F.cross_entropy(m(xs[k, step]), ys[k, step])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    _sync(device)
    return time.perf_counter() - start


def batched_time(members, xs, ys, device) -> float:
    bm = BatchedModels(members)
    opt = make_optimizer("adam", bm.params.values(), 1.2e-3)
    k = len(members)
    start = time.perf_counter()
    for step in range(xs.shape[1]):
        logits = bm(xs[:, step])
        loss = F.cross_entropy(logits.flatten(0, 1), ys[:, step].flatten(), reduction="none").view(k, -1).mean(1)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
    _sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = runtime.get_device()
    result = {}
    cases = [(k, "lenet300_100", (1, 28, 28), {}) for k in (1, 8, 32)]
    cases.append((32, "mlp", (1, 8, 8), {"hidden": (32,)}))
    for k, name, shape, kwargs in cases:
        gen = torch.Generator().manual_seed(k)
        xs = torch.randn(k, args.steps, BATCH, *shape, generator=gen).to(device)
        ys = torch.randint(0, 10, (k, args.steps, BATCH), generator=gen).to(device)
        members = [models.build(name, shape, 10, seed=s, device=device, **kwargs) for s in range(k)]
        loop_time(members, xs[:, :3], ys[:, :3], device)  # warm-up
        batched_time(members, xs[:, :3], ys[:, :3], device)
        loops, batch = [], []
        for _ in range(args.repeats):
            loops.append(loop_time(members, xs, ys, device))
            batch.append(batched_time(members, xs, ys, device))
        ratio = statistics.median(a / b for a, b in zip(loops, batch, strict=True))
        print(f"{name:13s} K={k:2d}: loop {statistics.median(loops):6.2f} s, "
              f"batched {statistics.median(batch):6.2f} s, speed-up {ratio:.2f}×")
        key = f"batched_speedup_k{k}" + ("" if name == "lenet300_100" else "_small_mlp")
        result[key] = round(ratio, 2)
    result["device"] = device.type
    print(json.dumps(result))


if __name__ == "__main__":
    main()
