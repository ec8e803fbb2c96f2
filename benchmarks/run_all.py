"""Run every benchmark script in this folder and collect their JSON results into one file.

Usage: ``python benchmarks/run_all.py build/bench.json`` (what ``make bench`` does).
Each script prints a JSON object as its last line; a script that fails is
recorded with its error and the others still run.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def main(out: str) -> int:
    results: dict[str, dict] = {"machine": {
        "python": platform.python_version(), "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(), "processor": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }}
    failed = 0
    for script in sorted(HERE.glob("*.py")):
        if script.name == Path(__file__).name:
            continue
        print(f"== {script.name}", flush=True)
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
        print(proc.stdout, end="")
        try:
            results[script.stem] = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            failed += 1
            results[script.stem] = {"error": (proc.stderr or proc.stdout).strip()[-2000:]}
            print(f"   failed: {results[script.stem]['error'][-300:]}")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"results → {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "build/bench.json"))
