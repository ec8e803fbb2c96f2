"""Top Hessian eigenvalues with coursekit's Lanczos against PyHessian, the double-descent sweep batched, Fisher chunks.

1. The top-5 eigenvalues of the Hessian of LeNet-300-100 (266 610 parameters, trained two
   epochs on Fashion-MNIST) on 1 000 training examples: ``spectra.top_eigenvalues`` (Lanczos
   with full reorthogonalisation) against PyHessian's power iteration with deflation (Yao
   et al. 2020; ``hessian.eigenvalues(top_n=5)``), both stopping at the same tolerance (no
   eigenvalue moved by more than 1e-3, relative, in the last step), side by side
   (``sparse_speed.time_interleaved``); each builds its gradient graph inside the timing.
   Both are compared with a reference from 80 Lanczos steps: the largest relative error of
   the five. PyHessian is installed for this benchmark
   only, into a temporary folder (``pip install --target``); it is not a dependency of
   coursekit.
2. Lecture 14's sweep at one noise level (11 densities, ``ci`` settings): all densities
   trained as one batched model against one network at a time.
3. The true Fisher trace of lecture 04's 12-10-7-5-4-3-2 network on 2 048 inputs, as its
   ``FisherTrace`` records it after every snapshot: per-example gradients in chunks sized by
   memory (``spectra.GRADIENT_BUDGET``: one vectorised call here) against the fixed chunk of
   256 used before; the largest relative difference of the traces (the sampled labels are the same).

Last line (JSON): times, the ratios and the eigenvalue errors.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from dataclasses import replace

import torch
import torch.nn.functional as F

from coursekit import (
    data,
    double_descent,
    information_plane,
    models,
    sparse_double_descent,
    sparse_speed,
    spectra,
)
from coursekit.core.train import fit

EXAMPLES, TOP, REFERENCE_STEPS, TOL = 1_000, 5, 80, 1e-3


def pyhessian_module():
    """PyHessian's ``hessian`` class, installed into a temporary folder for this run."""
    target = tempfile.mkdtemp(prefix="pyhessian-")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", target,
                    "pyhessian==0.1"], check=True)
    sys.path.insert(0, target)
    from pyhessian import hessian

    return hessian


def eigenvalue_benchmark() -> dict:
    ds = data.load("fashion_mnist", "ci")
    model = models.build("lenet300_100", ds.input_shape, ds.num_classes, seed=0)
    fit(model, ds, epochs=2, lr=1.2e-3, optimizer="adam", progress=False)
    x, y = ds.x_train[:EXAMPLES], ds.y_train[:EXAMPLES]
    reference = spectra.top_eigenvalues(spectra.HessianOperator(model, x, y), TOP, steps=REFERENCE_STEPS,
                                        generator=torch.Generator().manual_seed(1))
    hessian = pyhessian_module()
    found = {}

    def ours():
        found["coursekit"] = spectra.top_eigenvalues(spectra.HessianOperator(model, x, y), TOP, steps=REFERENCE_STEPS,
                                                     tol=TOL, generator=torch.Generator().manual_seed(0))

    def theirs():
        torch.manual_seed(0)  # PyHessian draws its start vectors from the global generator
        values, _ = hessian(model.eval(), F.cross_entropy, data=(x, y), cuda=False).eigenvalues(
            maxIter=100, tol=TOL, top_n=TOP)
        found["pyhessian"] = torch.tensor(sorted(values, reverse=True), dtype=torch.float64)

    times = sparse_speed.time_interleaved({"coursekit": ours, "pyhessian": theirs}, repeats=3, number=1)
    errors = {name: float(((values - reference).abs() / reference.abs()).max()) for name, values in found.items()}
    return {"parameters": sum(p.numel() for p in model.parameters()), "examples": EXAMPLES, "top": TOP, "tol": TOL,
            "coursekit_s": statistics.median(times["coursekit"]), "pyhessian_s": statistics.median(times["pyhessian"]),
            "pyhessian_over_coursekit": sparse_speed.paired_ratio(times["pyhessian"], times["coursekit"]),
            "reference_top": reference.tolist(), "coursekit_top": found["coursekit"].tolist(),
            "pyhessian_top": found["pyhessian"].tolist(),
            "coursekit_max_rel_error": errors["coursekit"], "pyhessian_max_rel_error": errors["pyhessian"]}


def sweep_benchmark() -> dict:
    settings = replace(sparse_double_descent.PRESETS["ci"], noise=(0.4,))
    ds = sparse_double_descent.load_data(settings)
    runs = {"batched": lambda: double_descent.sweep(settings, ds, progress=False),
            "loop": lambda: double_descent.sweep(settings, ds, batched=False, progress=False)}
    times = sparse_speed.time_interleaved(runs, repeats=2, number=1)
    return {"densities": len(settings.densities), "epochs": settings.epochs,
            "batched_s": statistics.median(times["batched"]), "loop_s": statistics.median(times["loop"]),
            "loop_over_batched": sparse_speed.paired_ratio(times["loop"], times["batched"])}


def fisher_chunk_benchmark() -> dict:
    settings = information_plane.PRESETS["ci"]
    task = information_plane.twelve_bit_task(0)
    model = models.build("mlp", task.input_shape, task.num_classes, seed=0, hidden=settings.hidden,
                         activation=settings.activation)
    x, y = task.x_train[:settings.fisher_examples], task.y_train[:settings.fisher_examples]
    found = {}

    def trace(chunk):
        def run():
            found[chunk] = spectra.fisher_trace(model, x, y, "true", chunk=chunk,
                                                generator=torch.Generator().manual_seed(0))
        return run

    times = sparse_speed.time_interleaved({"budget": trace(None), "fixed_256": trace(256)}, repeats=7, number=5)
    return {"examples": len(y), "chunk": spectra._chunk_size(model, len(y), None),
            "budget_ms": 1e3 * statistics.median(times["budget"]),
            "fixed_256_ms": 1e3 * statistics.median(times["fixed_256"]),
            "fixed_over_budget": sparse_speed.paired_ratio(times["fixed_256"], times["budget"]),
            "max_rel_difference": float(((found[None] - found[256]).abs() / found[256].abs()).max())}


def main() -> None:
    torch.set_num_threads(2)
    eigen = eigenvalue_benchmark()
    print(f"top-{TOP} Hessian eigenvalues of LeNet-300-100 ({eigen['parameters']:,} weights, {EXAMPLES} examples): "
          f"coursekit Lanczos {eigen['coursekit_s']:.2f} s, PyHessian {eigen['pyhessian_s']:.2f} s "
          f"({eigen['pyhessian_over_coursekit']:.1f}×); largest relative error vs {REFERENCE_STEPS} Lanczos steps: "
          f"{eigen['coursekit_max_rel_error']:.1e} vs {eigen['pyhessian_max_rel_error']:.1e}")
    sweep = sweep_benchmark()
    print(f"double-descent sweep, {sweep['densities']} densities: batched {sweep['batched_s']:.1f} s, one at a time "
          f"{sweep['loop_s']:.1f} s ({sweep['loop_over_batched']:.1f}×)")
    chunks = fisher_chunk_benchmark()
    print(f"true Fisher trace of the 12-bit MLP, {chunks['examples']} inputs: chunks of {chunks['chunk']} "
          f"{chunks['budget_ms']:.1f} ms, of 256 {chunks['fixed_256_ms']:.1f} ms ({chunks['fixed_over_budget']:.1f}×); "
          f"traces differ by {chunks['max_rel_difference']:.0e} at most")
    print(json.dumps({"eigenvalues": eigen, "double_descent": sweep, "fisher_chunks": chunks}))


if __name__ == "__main__":
    main()
