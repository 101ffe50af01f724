"""Prove it learns: a task's tiny recipe from scratch with a fixed seed (data -> SFT -> SDE-GRPO with Early-Step
Focus and the dense reward -> evaluation on >= 200 held-out puzzles), P/R/F1/SR/EM of SFT and GRPO with 95%
bootstrap confidence intervals over puzzles and wall time per phase, logged to MLflow with reward curves and videos.

Ablations (same SFT model, same seed): ``--ablate [reward]`` adds GRPO with the sparse success reward,
``--ablate [plan]`` adds GRPO with every step trained (Flow-GRPO) next to Early-Step Focus.

    python benchmarks/learning.py --task maze
    python benchmarks/learning.py --task maze --ablate [reward,plan] --out runs/learning/maze

This is ``videoreason recipe`` (``videoreason/recipe.py``); ``make demo`` runs the maze recipe without ablations.
"""

from __future__ import annotations

import sys

from videoreason.cli import main

if __name__ == "__main__":
    sys.exit(main(["recipe", *sys.argv[1:]]))
