"""Run every fuzz harness for a fixed time and report executions and crashes.

``python fuzz/run.py --seconds 60`` (``make faults`` runs it). Each harness starts from its
seed corpus in ``fuzz/corpus/`` (read only: what libFuzzer adds goes to a temporary
directory) and writes a crashing input under ``--artifacts`` (a temporary directory by
default). Exit status 1 if any harness crashed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESSES = {"codec_harness.py": "codec", "line_reader_harness.py": "lines"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=60, help="per harness")
    parser.add_argument("--artifacts", default=None, help="where crashing inputs go")
    args = parser.parse_args()
    artifacts = Path(args.artifacts or tempfile.mkdtemp(prefix="eventwire-fuzz-"))
    artifacts.mkdir(parents=True, exist_ok=True)
    crashed = False
    total = 0
    for harness, seeds in HARNESSES.items():
        with tempfile.TemporaryDirectory(prefix="eventwire-corpus-") as corpus:
            result = subprocess.run(  # noqa: S603 - our own interpreter and harness
                [
                    sys.executable,
                    str(HERE / harness),
                    f"-max_total_time={args.seconds}",
                    f"-artifact_prefix={artifacts}/{harness.removesuffix('.py')}-",
                    "-print_final_stats=1",
                    corpus,
                    str(HERE / "corpus" / seeds),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
        log = result.stdout + result.stderr
        done = re.search(r"Done (\d+) runs in (\d+) second", log)
        runs = int(done.group(1)) if done else 0
        total += runs
        if result.returncode != 0:
            crashed = True
            print(f"{harness}: CRASHED after {runs:,} executions; input under {artifacts}")
            print(log[-4000:])
        else:
            print(f"{harness}: {runs:,} executions in {args.seconds} s, no crash")
    print(f"fuzzing: {total:,} executions, {'a crash' if crashed else '0 crashes'}")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
