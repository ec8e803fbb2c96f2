"""Cost of keeping pruned weights at zero: one LeNet-300-100 training step at 80 % sparsity.

Variants, each timed over a block of steps, interleaved and repeated (the machine
is noisy: only ratios taken side by side mean anything):

* ``dense``: the plain step (optimisers as ``coursekit.core.train.make_optimizer`` makes them: fused);
* ``masked``: coursekit's step, re-zeroing pruned weights after ``optimizer.step()``
  with one ``torch._foreach_mul_`` (:meth:`coursekit.core.masks.Mask.hook`);
* ``masked_grad``: the same plus masking the gradients before the step (keeps the
  optimiser state clean; the alternative the docstring of ``coursekit.core.masks`` weighs);
* ``torchprune``: ``torch.nn.utils.prune`` (a forward pre-hook recomputing
  ``weight = weight_orig * weight_mask`` at every forward pass).

Last line: JSON with the median over repeats of each variant's time over the dense
time of the same repeat, for SGD and Adam. ``--flush-denormal`` sets
``torch.set_flush_denormal(True)`` to show why ``masked_grad`` slows Adam on a CPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch
import torch.nn.functional as F

from coursekit import models, runtime
from coursekit.core.masks import prunable_parameters
from coursekit.core.pruning import mask_from_scores
from coursekit.core.train import make_optimizer

BATCH, DENSITY = 60, 0.2


def make_step(variant: str, model0, mask, optimizer: str):
    model = copy.deepcopy(model0)
    rezero = None
    if variant == "torchprune":
        mask.to_torch_prune(model)
    elif variant in ("masked", "masked_grad"):
        rezero = mask.hook(model)
    opt = (make_optimizer("sgd", model.parameters(), lr=0.05, momentum=0.9) if optimizer == "sgd"
           else make_optimizer("adam", model.parameters(), lr=1e-3))
    named = dict(model.named_parameters())
    grads_of = [named[n] for n in mask] if variant == "masked_grad" else []
    factors = [mask[n].to(named[n].dtype) for n in mask] if variant == "masked_grad" else []

    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grads_of:
            torch._foreach_mul_([p.grad for p in grads_of], factors)
        opt.step()
        if rezero is not None:
            rezero()

    return step


def timed(step, batches, device) -> float:
    start = time.perf_counter()
    for x, y in batches:
        step(x, y)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--flush-denormal", action="store_true")
    args = parser.parse_args()
    torch.set_flush_denormal(args.flush_denormal)
    device = runtime.get_device()
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(BATCH, 1, 28, 28, generator=gen).to(device),
                torch.randint(0, 10, (BATCH,), generator=gen).to(device)) for _ in range(args.steps)]
    model0 = models.build("lenet300_100", (1, 28, 28), 10, seed=0, device=device)
    scores = {n: p.detach().abs() for n, p in prunable_parameters(model0).items()}
    mask = mask_from_scores(scores, DENSITY)
    variants = ("dense", "masked", "masked_grad", "torchprune")
    result = {}
    for optimizer in ("sgd", "adam"):
        steps = {v: make_step(v, model0, mask, optimizer) for v in variants}
        for v in variants:  # warm-up
            timed(steps[v], batches[:20], device)
        times = {v: [] for v in variants}
        for _ in range(args.repeats):
            for v in variants:
                times[v].append(timed(steps[v], batches, device))
        for v in variants:
            print(f"{optimizer:5s} {v:12s} {1e3 * statistics.median(times[v]) / args.steps:7.3f} ms/step")
        for v in variants[1:]:  # paired: each block against the dense block beside it
            ratios = [t / d for t, d in zip(times[v], times["dense"], strict=True)]
            result[f"{v}_over_dense_{optimizer}"] = round(statistics.median(ratios), 3)
    result["device"] = device.type
    print(json.dumps(result))


if __name__ == "__main__":
    main()
