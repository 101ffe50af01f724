"""Side-by-side metric tables of several evaluations (e.g. SFT vs GRPO): ``python -m videoreason.eval.compare
NAME=EVAL_DIR ...`` prints one Markdown table with a column group per evaluation."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from videoreason.eval.table import HEADLINE, LABELS


def compare(evals: dict[str, list[dict]]) -> str:
    """A Markdown table: one row per (task, difficulty), ``SR``/``F1``/... of each named evaluation side by side."""
    if not evals:
        raise ValueError("nothing to compare")
    rows = {(r["task"], r["difficulty"]): r["n"] for table in evals.values() for r in table}
    by_name = {name: {(r["task"], r["difficulty"]): r for r in table} for name, table in evals.items()}
    head = ["task", "difficulty", "n"] + [f"{LABELS[m]} {name}" for m in HEADLINE for name in evals]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for key, n in sorted(rows.items()):
        cells = [key[0], key[1], str(n)]
        for metric in HEADLINE:
            for name in evals:
                row = by_name[name].get(key)
                cells.append(f"{row[metric]:.1f}" if row else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``NAME=DIR`` arguments, each an output folder of ``videoreason eval`` (holding ``metrics.json``)."""
    evals = {}
    for arg in argv if argv is not None else sys.argv[1:]:
        name, _, folder = arg.partition("=")
        if not folder:
            name, folder = Path(arg).name, arg
        path = Path(folder) / "metrics.json"
        if not path.is_file():
            print(f"error: {path} does not exist (run `videoreason eval` first)", file=sys.stderr)
            return 2
        evals[name] = json.loads(path.read_text())
    print(compare(evals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
