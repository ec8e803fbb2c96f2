"""Claims: value, bound, margin; what check() shows, logs and refuses; the margins summary."""

import json
import math
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from coursekit.core.claims import Claim, check, seeds

sys.path.insert(0, str(Path(__file__).parent))
import margins  # tests/margins.py, the runner of `make margins`


def test_margin_is_the_distance_on_the_passing_side():
    assert Claim("a", 0.8, ">", 0.5).margin == pytest.approx(0.3)
    assert Claim("b", 0.2, "<", 0.5).margin == pytest.approx(0.3)
    assert not Claim("c", 0.5, ">", 0.5).holds and Claim("d", 0.5, ">=", 0.5).holds
    assert not Claim("e", float("nan"), ">", 0).holds
    assert Claim("f", torch.tensor(2.0, requires_grad=True) * 1, ">", 1).value == 2.0


def test_check_shows_every_claim_and_fails_naming_the_failures():
    table = check("here", [Claim("up", 2, ">", 1), Claim("down", 0.1, "<", 1)])
    assert list(table.columns) == ["claim", "value", "op", "bound", "margin", "holds"] and table["holds"].all()
    with pytest.raises(AssertionError, match=r"here: 1 of 2 claims fail\n  low: 0\.05 > 0\.1 does not hold"):
        check("here", [Claim("fine", 1, ">", 0), Claim("low", 0.05, ">", 0.1)])


@pytest.mark.parametrize(("claims", "message"), [
    ((c for c in [Claim("low", 0.05, ">", 0.1)]), "claims must be a list of Claim objects, got generator"),
    (Claim("one", 1, ">", 0), "got Claim"),
    ([Claim("x", 1, ">", 0), Claim("x", 2, ">", 0)], "each with its own name"),
    ([], "at least one claim"),
    ([("x", 1, ">", 0)], r"got \['tuple'\]"),
])
def test_check_refuses_what_would_check_nothing(claims, message):
    with pytest.raises(ValueError, match=message):
        check("here", claims)


@pytest.mark.parametrize(("args", "message"), [
    (("x", 1, "=>", 0), "unknown comparison '=>'"),
    (("x", True, ">", 0), "value must be a number, got True"),
    (("x", "high", ">", 0), "value must be a number, got 'high'"),
])
def test_bad_claims(args, message):
    with pytest.raises(ValueError, match=message):
        Claim(*args)


def test_claims_are_logged_for_the_margins_runner(tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("COURSEKIT_CLAIMS_LOG", str(log))
    check("nb", [Claim("acc", 0.9, ">", 0.5)])
    assert json.loads(log.read_text()) == {"where": "nb", "claim": "acc", "value": 0.9, "op": ">", "bound": 0.5}


def test_seeds_come_from_the_environment(monkeypatch):
    assert seeds(default=(1,)) == (1,)
    monkeypatch.setenv("COURSEKIT_SEEDS", "0,3")
    assert seeds(default=(1,)) == (0, 3)
    monkeypatch.setenv("COURSEKIT_SEEDS", "a,b")
    with pytest.raises(ValueError, match="comma-separated non-negative ints"):
        seeds(default=(1,))


def test_margins_summary_counts_failures_and_spread():
    raw = pd.DataFrame([
        *({"where": "nb", "claim": "steady", "value": v, "op": ">", "bound": 0.5} for v in (0.9, 0.91, 0.89)),
        *({"where": "nb", "claim": "shaky", "value": v, "op": ">", "bound": 0.5} for v in (0.6, 0.4, 0.55)),
        *({"where": "nb", "claim": "exact", "value": 1.0, "op": "<=", "bound": 1.0} for _ in range(3)),
    ])
    table = margins.summarise(raw).set_index("claim")
    assert table.loc["steady", "verdict"] == "robust" and table.loc["steady", "z"] == pytest.approx(40, rel=1e-3)
    assert table.loc["shaky", ["failed", "verdict"]].tolist() == [1, "fails"]
    assert table.loc["shaky", "worst"] == pytest.approx(-0.1)
    assert table.loc["exact", "runs"] == 3 and math.isnan(table.loc["exact", "z"])  # margin 0 every time
