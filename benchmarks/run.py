"""Thin entry script: the harness lives in hive_actors.bench so that `hive-actors bench`
(installed CLI) and this script run the same code.

    .venv/bin/python benchmarks/run.py --quick
    .venv/bin/python benchmarks/run.py --out benchmarks/results/latest.json --plot benchmarks/results/latest.png
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hive_actors.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
