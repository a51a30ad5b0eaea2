"""Where a worker's time goes, from py-spy's raw (collapsed) stacks.

    .venv/bin/python bench/pyspy_summary.py FOLDER [--top 30]

Prints, over the samples of every file in FOLDER (one per gunicorn worker, written by
`BENCH_PYSPY=FOLDER bench_predict.py --part scale`), the share of samples in which each
function appears (inclusive) and the share in which it is the innermost Python frame (self).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<name>[^ ]+) \((?P<file>[^:]+):?(?P<line>\d*)\)$")


def short(frame: str) -> str:
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/serving/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['name']} ({path})"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    inclusive, own, total = Counter(), Counter(), 0
    for path in Path(args.folder).glob("*.txt"):
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack:
                continue
            n = int(count)
            frames = [short(f) for f in stack.split(";")]
            total += n
            for name in set(frames):
                inclusive[name] += n
            own[frames[-1]] += n
    print(f"{total} samples")
    print("inclusive:")
    for name, n in inclusive.most_common(args.top):
        print(f"  {100 * n / total:5.1f} %  {name}")
    print("self:")
    for name, n in own.most_common(args.top):
        print(f"  {100 * n / total:5.1f} %  {name}")


if __name__ == "__main__":
    main()
