"""Wall time of lecture 02's experiment at ``cpu`` scale, one network at a time vs batched.

Runs ``lottery.run_imp`` with the ``cpu`` preset (Fashion-MNIST, 2 seeds, 8 rounds,
ticket + two controls) twice on this machine's device: unbatched, then with
``batch=True`` (all networks of a round trained as one model). Last line: JSON with
``lottery_cpu_seconds`` (unbatched) and ``lottery_batched_speedup``.
"""

from __future__ import annotations

import json
import time

from coursekit import data, lottery, runtime


def main() -> None:
    device = runtime.get_device()
    ds = data.load("fashion_mnist", "cpu", device)
    settings = lottery.PRESETS["cpu"]
    times = {}
    for batch in (False, True):
        start = time.perf_counter()
        table = lottery.run_imp(settings, ds, batch=batch)
        times[batch] = time.perf_counter() - start
        last = table[table["round"] == settings.rounds].groupby("variant")["test_acc_early_stop"].mean()
        print(f"batch={batch}: {times[batch]:.1f} s; last round: {last.round(3).to_dict()}")
    print(json.dumps({"lottery_cpu_seconds": round(times[False], 1),
                      "lottery_batched_speedup": round(times[False] / times[True], 2),
                      "device": device.type}))


if __name__ == "__main__":
    main()
