"""The Monte Carlo sign-flip's time and memory: a baseline revision and lmdelta now, side by side in fresh
subprocesses with one BLAS thread. Before issue 19 the P × R sign matrix was held as booleans; from 449c127 it
was held bit-packed and unpacked a block at a time; since validate VERSION 8 it is never held (each block of 1,024
resamples is drawn from its own generator, a chunk of prompts at a time). H hypotheses × P prompts of N(0.01, 1)
differences, R resamples; seconds, peak RSS (VmHWM, reset before the call; ru_maxrss would carry the parent's
high-water mark) and whether the p-values agree: exactly when both revisions draw the same signs, otherwise within
Monte Carlo error (the largest difference and the expected scale, sqrt(p (1 - p) / R) at p = 0.5, are reported).

    .venv/bin/python benchmarks/signflip.py --baseline abfc0cb [--hypotheses 50 --prompts 30000 --resamples 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np

# Run as a script, benchmarks/ is on the path: the same git-archive checkout of a revision as scale.py.
from scale import baseline_source

CHILD = """
import json, sys, time
import numpy as np
from lmdelta.stats.tests import paired_signflip_many
def status_mib(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key)) / 1024
h, p, r = (int(x) for x in sys.argv[1:4])
D = np.random.default_rng(0).normal(0.01, 1.0, size=(h, p))
before = status_mib("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # the peak from here on: not the imports' or the data's transients
started = time.perf_counter()
_, values = paired_signflip_many(D, None, "greater", n_resamples=r, seed=1)
print(json.dumps({"seconds": round(time.perf_counter() - started, 2),
                  "peak_rss_mib": round(status_mib("VmHWM")),
                  "rss_before_mib": round(before), "p_values": values.tolist()}))
"""


def measure(code: Path | None, args: argparse.Namespace) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if code is not None:
        env["PYTHONPATH"] = str(code)
    sizes = [str(args.hypotheses), str(args.prompts), str(args.resamples)]
    out = subprocess.run([sys.executable, "-c", CHILD, *sizes], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, metavar="REV", help="the git revision to compare with")
    parser.add_argument("--hypotheses", type=int, default=50)
    parser.add_argument("--prompts", type=int, default=30_000)
    parser.add_argument("--resamples", type=int, default=20_000)
    parser.add_argument("--scratch", default="/tmp/signflip")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "signflip.json"))
    args = parser.parse_args()
    before = measure(baseline_source(args.baseline, Path(args.scratch)), args)
    after = measure(None, args)
    p_before, p_after = np.array(before.pop("p_values")), np.array(after.pop("p_values"))
    same = bool(np.array_equal(p_before, p_after))
    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "baseline": before,
        "lmdelta": after,
        "same_p_values": same,
        "largest_p_value_difference": float(np.max(np.abs(p_before - p_after))),
        "monte_carlo_sd_at_p_half": float(np.sqrt(0.25 / args.resamples)),
    }
    print(json.dumps(result, indent=2))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
