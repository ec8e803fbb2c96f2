"""Does sparsity make a layer faster? Dense vs ``torch.sparse`` CSR vs a smaller dense layer.

One Linear-sized product ``W @ X``: ``W`` is 2048 × 2048 (16 MiB of fp32, larger than
any L2 cache, the size of a VGG classifier layer) and ``X`` a minibatch of 64
activations, so the arithmetic (268 M multiply–adds dense) dwarfs Python's per-call
overhead and the comparison is about the kernels. Variants, per density of ``W``
(:func:`coursekit.methods.sparse_speed.time_sparse_matmul`):

* ``dense``: ``W`` stored dense with its zeros, what masked training computes;
* ``csr``: ``W.to_sparse_csr() @ X``, unstructured sparsity through ``torch.sparse``;
* ``structured``: a dense ``W`` with only ``density × 2048`` rows, what filter
  pruning (:mod:`coursekit.methods.structured`) leaves.

Every (density, variant) block is timed in turn within each repeat (interleaved) and
the ratios ``dense / variant`` are paired per repeat; medians over repeats.
Last line: JSON with ``csr_speedup_d01``, ``csr_speedup_d10``, ``csr_speedup_d50`` (dense
time over CSR time at 1 %, 10 %, 50 % density), ``structured_speedup_50`` (dense time
over the time of the half-height layer) and ``csr_break_even`` (the density below which
CSR wins, interpolated, or null).

By default the kernels run on one thread (:func:`coursekit.core.runtime.one_thread`;
``--threads 0``: torch's default; ``--threads N``: N threads). On a
machine whose other cores are busy, a multi-threaded kernel waits for them: on 2 shared
cores every 2-thread call here took a multiple of 4 ms (the scheduler's time slice),
dense 12 ms and CSR 31 ms at *every* density, so the ratios measured the scheduler, not
the kernels; on one thread dense took 3.7 ms.
"""

from __future__ import annotations

import argparse
import json

import torch

from coursekit import runtime, sparse_speed

DENSITIES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="rows and columns of W")
    parser.add_argument("--batch", type=int, default=64, help="columns of X")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--number", type=int, default=5, help="calls per timed block")
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0: torch's default")
    args = parser.parse_args()
    if args.threads > 1:
        torch.set_num_threads(args.threads)
    device = runtime.get_device()
    table = sparse_speed.time_sparse_matmul(DENSITIES, args.size, args.size, args.batch,
                                            repeats=args.repeats, number=args.number, device=device,
                                            single_thread=args.threads == 1)
    with_ms = table.assign(**{c.replace("_s", "_ms"): 1e3 * table[c]
                              for c in ("dense_s", "csr_s", "structured_s")})
    print(with_ms.drop(columns=["dense_s", "csr_s", "structured_s"]).round(3).to_string(index=False))
    row = table.set_index("density")
    result = {f"csr_speedup_d{round(100 * d):02d}": round(float(row.loc[d, "csr_speedup"]), 3)
              for d in (0.01, 0.1, 0.5)}
    result["structured_speedup_50"] = round(float(row.loc[0.5, "structured_speedup"]), 3)
    result["csr_break_even"] = sparse_speed.break_even(table)
    threads = 1 if args.threads == 1 and device.type == "cpu" else torch.get_num_threads()
    result |= {"device": device.type, "threads": threads, "size": args.size,
               "batch": args.batch}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
