"""Wall time of lecture 02's experiment, one network at a time vs batched.

Runs ``lottery.run_imp`` with a preset (``--scale``, default ``cpu``: Fashion-MNIST, 2 seeds,
8 rounds, ticket + two controls) on this machine's device: unbatched, then with
``batch=True`` (all networks of a round trained as one model). ``--batched-only`` skips the
unbatched run (the ``gpu`` preset one network at a time takes far longer than the target).
Last line: JSON with ``lottery_<scale>_seconds`` (unbatched), ``lottery_<scale>_batched_seconds``
and ``lottery_batched_speedup``.

On a GPU machine without this project installed (Fashion-MNIST copied to ``data/fashion_mnist/``):
``PYTHONPATH=. python3 benchmarks/lottery_figure.py --scale gpu --batched-only``.
"""

from __future__ import annotations

import argparse
import json
import time

from coursekit import data, lottery, lottery_tickets, runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=tuple(lottery_tickets.PRESETS), default="cpu")
    parser.add_argument("--batched-only", action="store_true")
    args = parser.parse_args()
    device = runtime.get_device()
    ds = data.load("fashion_mnist", args.scale, device)
    settings = lottery_tickets.PRESETS[args.scale]
    times = {}
    for batch in (True,) if args.batched_only else (False, True):
        start = time.perf_counter()
        table = lottery.run_imp(settings, ds, batch=batch)
        times[batch] = time.perf_counter() - start
        last = table[table["round"] == settings.rounds].groupby("variant")["test_acc_early_stop"].mean()
        print(f"{args.scale} batch={batch}: {times[batch]:.1f} s; last round: {last.round(3).to_dict()}")
    result = {f"lottery_{args.scale}_batched_seconds": round(times[True], 1)}
    if False in times:
        result |= {f"lottery_{args.scale}_seconds": round(times[False], 1),
                   "lottery_batched_speedup": round(times[False] / times[True], 2)}
    print(json.dumps(result | {"device": device.type}))


if __name__ == "__main__":
    main()
