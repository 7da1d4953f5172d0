"""The keyword judge at scale: text by text (lmdelta before issue 19: `Keyword.found_in` per text and
hypothesis) against one search of all texts at once (`judges.keyword.Presence`), on the validation-sized
share of a `benchmarks/scale.py` corpus and the keyword hypotheses its run proposed. Both give the same
answers (checked); the tokens are cut once, outside the timings.

    .venv/bin/python benchmarks/keyword_judge.py --corpus /tmp/sc/corpus-200000.parquet \\
        --hypotheses /tmp/sc/run-lmdelta-200000/hypotheses.jsonl --texts 140000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from lmdelta.judges.keyword import Presence
from lmdelta.words import Keyword, tokens


def main() -> None:
    args = parse_args()
    table = pq.read_table(args.corpus, columns=["answer_a", "answer_b"]).to_pydict()
    texts = (table["answer_a"] + table["answer_b"])[: args.texts]
    rows = [json.loads(line) for line in Path(args.hypotheses).read_text(encoding="utf-8").splitlines()]
    keywords = [tuple(row["keywords"]) for row in rows if row.get("judge") == "keyword"]
    found = [tokens(text) for text in texts]
    started = time.perf_counter()
    parsed = [[Keyword.of(k) for k in group] for group in keywords]
    before = [np.array([1.0 if any(k.found_in(t) for k in ks) else 0.0 for t in found]) for ks in parsed]
    middle = time.perf_counter()
    presence = Presence(found)
    after = [presence.any_of(group) for group in keywords]
    ended = time.perf_counter()
    same = all(np.array_equal(x, y) for x, y in zip(before, after))
    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "texts": len(texts),
        "hypotheses": len(keywords),
        "text_by_text_s": round(middle - started, 2),
        "joined_search_s": round(ended - middle, 2),
        "speedup": round((middle - started) / max(ended - middle, 1e-9), 2),
        "same_answers": same,
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
    }
    print(json.dumps(result, indent=2))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if not same:
        raise SystemExit("the two ways disagree")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True, help="a benchmarks/scale.py corpus (Parquet)")
    parser.add_argument("--hypotheses", required=True, help="hypotheses.jsonl of a run on it")
    parser.add_argument("--texts", type=int, default=140_000, help="texts judged (the validation share)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "keyword_judge.json"))
    return parser.parse_args()


if __name__ == "__main__":
    main()
