"""On-device index batching vs a DataLoader over a TensorDataset, side by side.

Two measurements, each repeated with the two pipelines interleaved (the machine is
noisy, so only ratios taken in one run mean anything):

* one epoch of minibatches alone (batch 60, Fashion-MNIST's 55k training images);
* one epoch of LeNet-300-100 training with SGD on those minibatches.

The last line printed is a JSON object with the two ratios (DataLoader time over
on-device time); a ratio above 1 means the on-device batching is faster.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from coursekit import data, models, runtime

BATCH = 60


def ondevice(ds: data.Dataset, epoch: int):
    gen = torch.Generator(device=ds.device).manual_seed(epoch)
    return data.batches(ds.x_train, ds.y_train, BATCH, generator=gen)


def loader(ds: data.Dataset, epoch: int):
    gen = torch.Generator().manual_seed(epoch)
    return DataLoader(TensorDataset(ds.x_train, ds.y_train), batch_size=BATCH, shuffle=True,
                      generator=gen)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def batches_only(make, ds, epoch) -> float:
    start = time.perf_counter()
    for xb, _ in make(ds, epoch):
        xb.shape  # noqa: B018 -- the batch exists; nothing else is timed
    _sync(ds.device)
    return time.perf_counter() - start


def training_epoch(make, ds, epoch, model0) -> float:
    model = copy.deepcopy(model0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    start = time.perf_counter()
    for xb, yb in make(ds, epoch):
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(ds.device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rt = runtime.setup("gpu", seed=0)  # full training split, whatever the hardware
    ds = data.load("fashion_mnist", sizes=data.SIZES["gpu"], device=rt.device)
    model0 = models.build("lenet300_100", ds.input_shape, ds.num_classes, device=rt.device)
    times: dict[str, list[float]] = {k: [] for k in ("loader_batches", "ondevice_batches",
                                                     "loader_epoch", "ondevice_epoch")}
    for r in range(args.repeats):  # interleaved, so drift affects both alike
        times["loader_batches"].append(batches_only(loader, ds, r))
        times["ondevice_batches"].append(batches_only(ondevice, ds, r))
        times["loader_epoch"].append(training_epoch(loader, ds, r, model0))
        times["ondevice_epoch"].append(training_epoch(ondevice, ds, r, model0))
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:18s} median {v:7.3f} s over {args.repeats} runs")
    print(json.dumps({
        "loader_over_ondevice_batches": round(med["loader_batches"] / med["ondevice_batches"], 2),
        "loader_over_ondevice_epoch": round(med["loader_epoch"] / med["ondevice_epoch"], 2),
        "device": rt.device.type, "train_examples": len(ds.y_train), "batch_size": BATCH,
    }))


if __name__ == "__main__":
    main()
