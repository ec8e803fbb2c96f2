"""Layer collapse (slide 10): does anything still connect the input to the output?

Pruning with a global threshold can empty a whole layer — then no path is left and the
network outputs a constant, whatever its other weights (Tanaka et al. 2020 call it
*layer collapse*). :func:`paths` counts the input–output paths through a mask: the
network with every kept weight set to 1, every other parameter to 0 (BatchNorm to the
identity) and an all-ones input sums, at its output, the number of paths (through a
convolution, a path per kernel position). :func:`collapse_table` follows masks as the
compression rises and :func:`max_compression` reads off the last one still connected.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from coursekit.core.masks import Mask


@torch.no_grad()
def paths(model: nn.Module, mask: Mask, input_shape: Sequence[int]) -> float:
    """The number of input–output paths through the kept weights of ``mask`` (float64; 0: collapsed)."""
    net = copy.deepcopy(model).double().eval()
    mask.check(net)
    for name, p in net.named_parameters():
        p.copy_(mask[name].to(p.dtype) if name in mask else torch.zeros_like(p))
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.zero_()
            m.running_var.fill_(1.0 - m.eps)  # x / sqrt(var + eps) = x
            if m.affine:
                m.weight.fill_(1.0)
    device = next(net.parameters()).device
    return float(net(torch.ones(1, *input_shape, dtype=torch.float64, device=device)).sum())


def collapse_table(model: nn.Module, masks: Mapping[float, Mask], input_shape: Sequence[int]) -> pd.DataFrame:
    """For each compression (``1 / density``) and its mask: per-layer density, paths, and whether collapsed.

    Rows: ``compression``, ``layer``, ``density`` (of that layer), ``paths`` (of the whole
    mask), ``collapsed`` (no path left).
    """
    rows = []
    for compression, mask in sorted(masks.items()):
        n = paths(model, mask, input_shape)
        rows += [{"compression": compression, "layer": layer, "density": d, "paths": n, "collapsed": n == 0}
                 for layer, d in mask.layer_densities().items()]
    return pd.DataFrame(rows)


def max_compression(table: pd.DataFrame) -> float:
    """The largest compression of :func:`collapse_table` before the first collapsed one (``inf``: none collapsed)."""
    per = table.drop_duplicates("compression").sort_values("compression")
    collapsed = per[per["collapsed"]]
    if collapsed.empty:
        return math.inf
    before = per[per["compression"] < collapsed["compression"].iloc[0]]
    return float(before["compression"].iloc[-1]) if len(before) else float("nan")
