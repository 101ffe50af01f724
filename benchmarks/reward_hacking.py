"""Reward hacking, shown: SDE-GRPO from the packaged maze SFT model against a foolable learned-reward stand-in (a
"judge" that likes the path's yellow, ``configs/rewards/maze_judge.yaml``) next to the same run against the
verifiable dense maze reward. Both runs log the judge's score and the verified success rate every step (in the
verifiable run the judge has weight 0), so the table and ``OUT/reward_hacking.png`` show the judge's reward rising
while verified success falls under the judge, and success rising under the verifier.

    python benchmarks/reward_hacking.py [--steps 30] [--out runs/reward_hacking]

Each run is ``videoreason fit --config configs/maze/grpo_tiny_fill_steps.yaml`` with its reward swapped in; its
MLflow run (experiment of ``OUT/<run>``, ``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db``) has both
curves: ``rewards/judge/mean`` and ``success_rate``. ~6 min per 20 steps per run on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

from videoreason.resources import PretrainedModel, config_root

CONFIGS = config_root()
JUDGE = {"class_path": "videoreason.rewards.ModelReward",
         "init_args": {"scorer": "videoreason.rewards.ColourFractionScorer",
                       "scorer_args": {"colour": [250, 196, 20], "saturation": 0.25}}}


def videoreason(*args: str) -> None:
    """Run a ``videoreason`` command, failing loudly."""
    print("$ videoreason " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "videoreason.cli", *args], check=True)


def rewards(out: Path) -> dict[str, Path]:
    """Run name -> reward file: the judge preset, and the dense maze reward with the judge logged at weight 0."""
    verifiable = yaml.safe_load((CONFIGS / "rewards" / "maze_dense.yaml").read_text())
    verifiable["init_args"]["rewards"]["judge"] = JUDGE
    verifiable["init_args"]["weights"]["judge"] = 0.0
    path = out / "maze_dense_with_judge.yaml"
    path.write_text(yaml.safe_dump(verifiable, sort_keys=False))
    return {"judge": CONFIGS / "rewards" / "maze_judge.yaml", "verifiable": path}


def history(run_dir: Path, key: str) -> dict[int, float]:
    """Step -> value of one metric of ``run_dir``'s MLflow run."""
    from mlflow.tracking import MlflowClient

    from videoreason.tracking import find_run, local_tracking_uri

    client = MlflowClient(local_tracking_uri(run_dir))
    run_id = find_run(client, run_dir)
    if run_id is None:
        raise FileNotFoundError(f"no MLflow run of {run_dir}")
    return {m.step: m.value for m in client.get_metric_history(run_id, key)}


def plot(curves: dict[str, dict[str, dict[int, float]]], path: Path) -> None:
    """Judge reward and verified success against GRPO steps, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key, title in zip(axes, ("rewards/judge/mean", "success_rate"),
                              ("judge's reward (yellow share)", "verified success rate"), strict=True):
        for run, metrics in curves.items():
            steps = sorted(metrics[key])
            ax.plot(steps, [metrics[key][s] for s in steps], marker="o", markersize=3, label=f"trained on {run}")
        ax.set_title(title)
        ax.set_xlabel("GRPO step")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="GRPO steps per run")
    parser.add_argument("--out", type=Path, default=Path("runs/reward_hacking"))
    parser.add_argument("--window", type=int, default=5, help="steps averaged per table row")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = PretrainedModel("maze_fill_steps")
    data = args.out / "data"
    if not (data / "metadata.csv").is_file():
        for split, num in (("test", "200"), ("val", "32"), ("train", "400")):  # test first: the others skip it
            videoreason("data", "generate", "--task", "maze", "--difficulty", "tiny-fill", "--split", split,
                        "--num", num, "--seed", str(start.data_seed), "--out", str(data), "--height", "56",
                        "--width", "56", "--frames", "9")
    curves = {}
    for run, reward in rewards(args.out).items():
        run_dir = args.out / run
        if not (run_dir / "adapter").exists():
            videoreason("fit", "--config", str(CONFIGS / "maze" / "grpo_tiny_fill_steps.yaml"),
                        "--model.init_args.init_from", str(start.path), "--model.init_args.reward", str(reward),
                        "--data.init_args.root", str(data), "--trainer.default_root_dir", str(run_dir),
                        "--trainer.max_steps", str(args.steps), "--trainer.val_check_interval", str(args.steps))
        curves[run] = {k: history(run_dir, k) for k in ("rewards/judge/mean", "success_rate", "val/maze/success")}
    print(f"\nGRPO from the packaged maze SFT model, mean over {args.window}-step windows (training rollouts):")
    print("| steps | judge run: judge reward | judge run: verified SR | verifiable run: judge reward "
          "| verifiable run: verified SR |")
    print("|---|---|---|---|---|")
    for first in range(0, args.steps, args.window):
        cells = []
        for run in ("judge", "verifiable"):
            for key in ("rewards/judge/mean", "success_rate"):
                values = [v for s, v in curves[run][key].items() if first <= s < first + args.window]
                cells.append(f"{sum(values) / len(values):.2f}" if values else "-")
        print(f"| {first + 1}-{min(first + args.window, args.steps)} | " + " | ".join(cells) + " |")
    held_out = {run: list(c["val/maze/success"].values())[-1] for run, c in curves.items() if c["val/maze/success"]}
    print("\nverified SR on the 32 validation mazes after training: "
          + ", ".join(f"{run} {100 * v:.1f}%" for run, v in held_out.items()))
    plot(curves, args.out / "reward_hacking.png")
    print(f"figure: {args.out / 'reward_hacking.png'}")


if __name__ == "__main__":
    main()
