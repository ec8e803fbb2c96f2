"""How far each trained check lies from failing: ``make margins`` (CI need not run it).

Every lecture notebook and every test marked ``trained`` states its headline results
as claims (:mod:`coursekit.core.claims`). This script runs them all at ``ci`` scale for
each seed and each torch thread count asked for (default: seeds 0–4, 1 and 2
threads), collects every claim's value, and prints one row per claim:

* ``runs`` / ``failed``: how many runs measured it, and in how many it did not hold;
* ``worst``: the smallest margin seen (value minus bound, in the passing direction);
* ``mean``, ``sd``: the margin's mean and standard deviation over the runs;
* ``z``: ``mean / sd``, the margin in units of its spread (``inf`` for a claim that
  does not vary);
* ``verdict``: ``robust`` when no run failed and ``z ≥ 3``; ``thin`` otherwise;
  ``fails`` when some run failed.

Another CPU, thread count or library build perturbs a training run much as another
seed does, so the spread over seeds and thread counts is the yardstick a claim's
margin is measured in. Raw values go to ``OUT/raw/``, the table to ``OUT/margins.csv``
and ``OUT/margins.md``.

    python tests/margins.py                    # everything (about 30 min on 2 cores)
    python tests/margins.py --only early_bird  # notebooks and tests whose name contains it
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

REPO = Path(__file__).resolve().parent.parent
ROBUST_Z = 3.0


def _jobs(seeds: list[int], threads: list[int], only: str | None) -> list[dict]:
    notebooks = sorted(p for p in (REPO / "lectures").glob("*.ipynb"))
    tests = sorted(p for p in (REPO / "tests").glob("test_*.py") if "pytest.mark.trained" in p.read_text())
    jobs = []
    for t in threads:
        for seed in seeds:
            for nb in notebooks:
                if only is None or only in nb.stem:
                    jobs.append({"threads": t, "seed": seed, "name": nb.stem,
                                 "cmd": [sys.executable, "-m", "coursekit.tooling.cli", "run", str(nb), "--scale", "ci",
                                         "-p", f"SEED={seed}", "-o", "{tmp}/" + nb.name]})
            picked = [str(p) for p in tests if only is None or only in p.stem]
            if picked:
                jobs.append({"threads": t, "seed": seed, "name": "tests",
                             "cmd": [sys.executable, "-m", "pytest", "-q", "-m", "trained", "-p", "no:cacheprovider",
                                     "-n", "0", *picked]})
    return jobs


def _run(job: dict, raw: Path, timeout: int, tries: int = 2) -> dict:
    """Run one job; a run that outlives ``timeout`` (a hung kernel) is killed and tried again."""
    log = raw / f"t{job['threads']}-s{job['seed']}-{job['name']}.jsonl"
    hung = 0
    for _ in range(tries):
        log.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(prefix="margins-") as tmp:
            env = os.environ | {"OMP_NUM_THREADS": str(job["threads"]), "MKL_NUM_THREADS": str(job["threads"]),
                                "COURSEKIT_SCALE": "ci", "COURSEKIT_SEEDS": str(job["seed"]),
                                "COURSEKIT_CLAIMS_LOG": str(log), "COURSEKIT_RUNS": tmp, "MPLBACKEND": "Agg"}
            cmd = [part.replace("{tmp}", tmp) for part in job["cmd"]]
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, start_new_session=True)
            try:
                output, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the runner and its kernel
                output, _ = proc.communicate()
                output += f"\n[killed after {timeout} s]"
                hung += 1
        if proc.returncode == 0 or "[killed after" not in output:
            break
    return {**job, "returncode": proc.returncode, "log": log, "hung": hung,
            "tail": output[-1500:] if proc.returncode else ""}


def _claims(results: list[dict]) -> pd.DataFrame:
    rows = []
    for r in results:
        if r["log"].is_file():
            for line in r["log"].read_text().splitlines():
                rows.append({"threads": r["threads"], "seed": r["seed"], **json.loads(line)})
    return pd.DataFrame(rows)


def summarise(raw: pd.DataFrame) -> pd.DataFrame:
    """One row per (where, claim): runs, failures, worst/mean/sd of the margin, z and a verdict."""
    raw = raw.copy()
    above = raw["op"].str.startswith(">")
    raw["margin"] = (raw["value"] - raw["bound"]).where(above, raw["bound"] - raw["value"])
    strict = raw["op"].str.len() == 1
    raw["holds"] = (raw["margin"] > 0).where(strict, raw["margin"] >= 0) & raw["margin"].notna()
    rows = []
    for (where, claim), g in raw.groupby(["where", "claim"], sort=False):
        mean, sd = g["margin"].mean(), g["margin"].std(ddof=1) if len(g) > 1 else float("nan")
        z = math.inf if sd == 0 and mean > 0 else mean / sd if sd and sd > 0 else float("nan")
        failed = int((~g["holds"]).sum())
        verdict = "fails" if failed else "robust" if z >= ROBUST_Z else "thin"
        rows.append({"where": where, "claim": claim, "op": g["op"].iloc[0], "bound": g["bound"].iloc[0],
                     "runs": len(g), "failed": failed, "worst": g["margin"].min(), "mean": mean, "sd": sd,
                     "z": z, "verdict": verdict})
    return pd.DataFrame(rows)


def _markdown(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    fmt = {c: "{:.3g}".format for c in ("bound", "worst", "mean", "sd", "z")}
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(fmt.get(c, str)(v) for c, v in zip(cols, row, strict=True)) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (default 0,1,2,3,4)")
    p.add_argument("--threads", default="1,2", help="comma-separated torch thread counts (default 1,2)")
    p.add_argument("--only", help="run only notebooks and test files whose name contains this")
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores to fill (default: all)")
    p.add_argument("--timeout", type=int, default=300, help="seconds before a run counts as hung (default 300)")
    p.add_argument("-o", "--out", default=str(REPO / "build" / "margins"), help="output folder")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    out = Path(args.out).resolve()  # the notebooks' kernels run in lectures/
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    results = []
    jobs = _jobs(seeds, threads, args.only)
    with tqdm(total=len(jobs), desc="margin runs") as bar:
        for t in threads:
            mine = [j for j in jobs if j["threads"] == t]
            with ThreadPoolExecutor(max_workers=max(1, args.cores // t)) as pool:
                for result in pool.map(lambda j: _run(j, raw, args.timeout), mine):
                    results.append(result)
                    bar.update()
    hangs = [f"{r['name']} (seed {r['seed']}, {r['threads']} threads)" for r in results if r["hung"]]
    print(f"\n{len(hangs)} of {len(results)} runs hung and were run again: {hangs}")
    for r in results:
        if r["returncode"]:
            print(f"\n{r['name']} (seed {r['seed']}, {r['threads']} threads) exited {r['returncode']}:\n{r['tail']}")
    claims = _claims(results)
    if claims.empty:
        print("no claims were logged")
        return 1
    table = summarise(claims)
    table.to_csv(out / "margins.csv", index=False)
    (out / "margins.md").write_text(_markdown(table), encoding="utf-8")
    with pd.option_context("display.width", 200, "display.max_colwidth", 60, "display.max_rows", 500):
        print(table.round(3).to_string(index=False))
    print(f"\n{(table['verdict'] == 'robust').sum()} of {len(table)} claims robust; table → {out / 'margins.md'}")
    return 0 if (table["verdict"] != "fails").all() else 1


if __name__ == "__main__":
    sys.exit(main())
