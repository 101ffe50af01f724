"""The recipe runner: variants map to the right configs, the report computes CIs from per-puzzle eval rows and logs
to MLflow, a failing phase names its log, and an existing output folder is not overwritten."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import videoreason.recipe as recipe_module
from videoreason.recipe import RECIPES, Recipe, recipe, run, variants
from videoreason.resources import PretrainedModel
from videoreason.tasks.base import resolve_task


def _eval_rows(folder: Path, successes: list[float]) -> None:
    folder.mkdir(parents=True)
    rows = [{"id": f"maze_test_{i}", "task": "maze", "difficulty": "tiny", "precision": s, "recall": s, "f1": s,
             "success": s, "exact_match": s} for i, s in enumerate(successes)]
    (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_variants_point_at_the_ablation_configs():
    names = variants("maze", ["reward", "plan"])
    assert list(names) == ["grpo", "sparse", "all_steps"]
    assert Path(names["sparse"][1]).name == "maze_sparse.yaml" and Path(names["sparse"][1]).is_file()
    assert "AllSteps" in names["all_steps"][1]


@pytest.mark.parametrize("task", sorted(RECIPES))
def test_recipe_frames_give_every_board_cell_one_token(task):
    data, solver = RECIPES[task], resolve_task(task)
    board = solver.initial_state(solver.generate(np.random.default_rng(0), data.difficulty))
    assert data.size == 8 * board.shape[0] == 8 * board.shape[1]  # PixelCodec patch 4 x Wan patch 2 = 8 px
    assert data.render == ["--height", str(data.size), "--width", str(data.size), "--frames", str(data.frames)]


def _commands(tmp_path, monkeypatch, **kwargs) -> list[list[str]]:
    """The commands a maze recipe runs (none is run)."""
    commands = []
    monkeypatch.setattr(recipe_module, "run", lambda command, log, name="": commands.append(command) or 1.0)
    monkeypatch.setattr(Recipe, "report", lambda self: {})
    (tmp_path / "data").mkdir()
    Recipe("maze", tmp_path, [], seed=3, reuse=False, overrides={"sft": [], "grpo": []}, **kwargs).run_all()
    return commands


def _arg(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_grpo_starts_from_the_packaged_sft_model_on_its_data_seed(tmp_path, monkeypatch):
    start = PretrainedModel("maze_fill_steps")
    commands = _commands(tmp_path, monkeypatch)
    data = [c for c in commands if c[0] == "data"]
    assert [_arg(c, "--split") for c in data] == ["test", "val", "train"]  # test first: the others skip its boards
    assert {_arg(c, "--seed") for c in data} == {str(start.data_seed)}  # its test boards are held out from it
    assert [_arg(c, "--num") for c in data] == ["200", "32", "400"]  # GRPO draws only a few hundred puzzles
    assert [c[0] for c in commands[3:]] == ["eval", "fit", "eval"]  # no SFT training
    assert _arg(commands[3], "--ckpt") == str(start.path) and _arg(commands[3], "--out") == str(
        tmp_path / "sft" / "eval" / "test")
    assert _arg(commands[4], "--model.init_args.init_from") == str(start.path)
    assert _arg(commands[4], "--seed_everything") == "3" and _arg(commands[5], "--seed") == "3"
    assert _arg(commands[3], "--batch_size") == _arg(commands[5], "--batch_size") == "32"  # tiny videos: big batches


def test_every_recipe_command_parses_with_the_generated_cli(tmp_path, monkeypatch):
    from videoreason.cli import COMMANDS, command_parser

    for command in _commands(tmp_path, monkeypatch, from_scratch=True):
        words = next((w for w in COMMANDS if tuple(command[:len(w)]) == w), None)
        if words is not None:  # fit goes to LightningCLI, checked by the config tests
            command_parser(words, COMMANDS[words]).parse_args(command[len(words):])


@pytest.mark.parametrize("task", sorted(RECIPES))
def test_recipe_configs_exist_and_match_the_level(task):
    data = RECIPES[task]
    assert data.difficulty in resolve_task(task).levels
    for config in (data.sft_config, data.grpo_config):
        assert (recipe_module.CONFIGS / task / config).is_file()


def test_from_scratch_trains_the_packaged_model_with_its_steps(tmp_path, monkeypatch):
    start = PretrainedModel("maze_fill_steps")
    commands = _commands(tmp_path, monkeypatch, from_scratch=True)
    assert [(_arg(c, "--seed"), _arg(c, "--num")) for c in commands[:3]] == [("3", "200"), ("3", "32"), ("3", "4000")]
    sft = commands[3]
    assert Path(_arg(sft, "--config")).name == "sft_tiny_fill_steps.yaml" == start.card["config"].split("/")[-1]
    assert _arg(sft, "--trainer.max_steps") == str(start.card["optimizer_steps"])
    assert _arg(commands[5], "--model.init_args.init_from") == str(tmp_path / "sft" / "adapter")


def test_report_has_intervals_gain_and_mlflow_run(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # other tests' MLflow clients may have set it
    _eval_rows(tmp_path / "sft" / "eval" / "test", [0.0] * 200)
    _eval_rows(tmp_path / "grpo" / "eval" / "test", [1.0] * 50 + [0.0] * 150)
    (tmp_path / "grpo" / "eval" / "test" / "samples.png").write_bytes(b"png")
    recipe = Recipe("maze", tmp_path, [], seed=0, reuse=True, overrides={"sft": [], "grpo": []})
    recipe.times = {"sft": 60.0, "grpo": 120.0}
    result = recipe.report()
    assert result["metrics"]["grpo"]["success"]["mean"] == pytest.approx(25.0)
    assert result["sr_gain"]["grpo"]["low"] > 15
    text = (tmp_path / "results.md").read_text()
    assert "do not overlap" in text and "| sft | 0.0 [0.0, 0.0]" in text and "2.0 min" in text
    assert (tmp_path / "mlflow.db").is_file()
    assert [p.parent.name for p in tmp_path.glob("mlartifacts/**/samples/*/samples.png")] == ["grpo"]


def test_ablation_lines_and_times_survive_reuse(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for name, successes in (("sft", [0.0] * 20), ("grpo", [1.0] * 5 + [0.0] * 15), ("sparse", [0.0] * 20),
                            ("all_steps", [1.0] * 6 + [0.0] * 14)):
        _eval_rows(tmp_path / name / "eval" / "test", successes)
    (tmp_path / "times.json").write_text(json.dumps({"grpo": 60.0, "all_steps": 100.0}))
    recipe = Recipe("maze", tmp_path, ["reward", "plan"], seed=0, reuse=True, overrides={"sft": [], "grpo": []})
    assert recipe.times == {"grpo": 60.0, "all_steps": 100.0}  # measured by the earlier, interrupted run
    recipe.report()
    text = (tmp_path / "results.md").read_text()
    assert "Early-Step Focus vs all steps trained: SR -5.0 points, 40.0% less GRPO wall time" in text
    assert "dense vs sparse reward: SR +25.0 points" in text


def test_report_refuses_evaluations_on_different_puzzles(tmp_path):
    _eval_rows(tmp_path / "sft" / "eval" / "test", [0.0] * 10)
    _eval_rows(tmp_path / "grpo" / "eval" / "test", [0.0] * 9)
    with pytest.raises(ValueError, match="other puzzles"):
        Recipe("maze", tmp_path, [], seed=0, reuse=True, overrides={"sft": [], "grpo": []}).report()


def test_failing_phase_names_its_log(tmp_path):
    with pytest.raises(RuntimeError, match="exit 2") as err:
        run(["eval", "--ckpt", str(tmp_path / "missing"), "--data", str(tmp_path)], tmp_path / "eval.log")
    assert str(tmp_path / "eval.log") in str(err.value)


def test_a_phase_shows_its_live_progress_on_the_console(tmp_path, capsys):
    import subprocess
    import sys

    from videoreason.recipe import latest_progress, watch

    assert latest_progress("noise\nEpoch 0:  10%|#  | 1/10 [00:01<00:09]\rEpoch 0:  20%|## | 2/10 [00:02<00:08]\r"
                           "INFO: done\n") == "Epoch 0: 20%|## | 2/10 [00:02<00:08]"
    assert latest_progress("no bar here\n") is None
    bar = "step 1: update: 90%| 19/21 [00:05<00:00]"
    assert latest_progress(bar + "\x1b[A") == bar  # a nested bar's cursor move is not shown
    outer = "Epoch 0:  30%|### | 6/20 [05:12<12:13, reward=1.52]"
    assert latest_progress(f"{outer}\n{bar}\r") == f"Epoch 0: 30%|### | 6/20 [05:12<12:13, reward=1.52] | {bar}"
    log = tmp_path / "phase.log"
    script = ("import sys, time\nfor i in range(1, 4):\n    sys.stdout.write(f'\\rfit: {i}/3 [00:0{i}<00:00]')\n"
              "    sys.stdout.flush(); time.sleep(0.3)\nprint('\\nfinished')")
    with log.open("w") as stream:
        process = subprocess.Popen([sys.executable, "-c", script], stdout=stream, stderr=subprocess.STDOUT)
        assert watch(process, log, "sft", every=0.1) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith("[sft") and out.strip().endswith("fit: 3/3 [00:03<00:00]")


def test_existing_output_is_not_overwritten(tmp_path):
    (tmp_path / "sft").mkdir()
    with pytest.raises(ValueError, match="--reuse"):
        recipe(task="maze", out=tmp_path)


def test_report_draws_the_learning_curve_of_each_trained_model(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _eval_rows(tmp_path / "sft" / "eval" / "test", [0.0] * 20)
    _eval_rows(tmp_path / "grpo" / "eval" / "test", [0.0] * 20)
    (tmp_path / "sft" / "config.yaml").write_text("data:\n  init_args:\n    batch_size: 8\n    num_val_puzzles: 16\n")
    client = MlflowClient(f"sqlite:///{tmp_path / 'sft' / 'mlflow.db'}")
    run = client.create_run(client.create_experiment("sft")).info.run_id
    for step, sr, f1 in ((99, 0.0, 0.4), (199, 0.25, 0.6)):  # validations after 100 and 200 steps
        client.log_metric(run, "val/maze/success", sr, step=step)
        client.log_metric(run, "val/maze/f1", f1, step=step)
    result = Recipe("maze", tmp_path, [], seed=0, reuse=True, overrides={"sft": [], "grpo": []}).report()
    points = result["curves"]["sft"]
    assert [(p["step"], p["samples"]) for p in points] == [(100, 800), (200, 1600)]
    assert points[1]["success"]["mean"] == 25.0 and 0 < points[1]["success"]["low"] < 25 < points[1]["success"]["high"]
    assert points[1]["f1"] == pytest.approx(60.0)
    assert "grpo" not in result["curves"]  # no run folder: nothing to read
    text = (tmp_path / "results.md").read_text()
    assert "learning curve of sft" in text and "| 200 | 1600 |" in text
    assert (tmp_path / "learning_curves.png").stat().st_size > 1000


def test_ood_generates_larger_boards_and_scores_every_model_on_them(tmp_path, monkeypatch):
    from videoreason.cli import COMMANDS, command_parser

    commands = _commands(tmp_path, monkeypatch, ood=True)
    ood_data = [c for c in commands if c[0] == "data" and Path(_arg(c, "--out")).name.startswith("ood_")]
    assert [(_arg(c, "--difficulty"), _arg(c, "--height")) for c in ood_data] == [("easy-fill", "72"),
                                                                                  ("medium-fill", "88")]
    assert all("--frames" not in c for c in ood_data)  # the level's own frame count
    evals = [_arg(c, "--out") for c in commands if c[0] == "eval"]
    for model in ("sft", "grpo"):
        assert {str(tmp_path / model / "eval" / s) for s in ("test", "ood_easy-fill", "ood_medium-fill")} <= set(evals)
    parser = command_parser(("data", "generate"), COMMANDS[("data", "generate")])
    for command in ood_data:
        parser.parse_args(command[2:])


def test_report_has_a_table_per_ood_split(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for split in ("test", "ood_easy-fill", "ood_medium-fill"):
        _eval_rows(tmp_path / "sft" / "eval" / split, [0.0] * 10)
        _eval_rows(tmp_path / "grpo" / "eval" / split, [1.0] * 3 + [0.0] * 7)
    recipe = Recipe("maze", tmp_path, [], seed=0, reuse=True, overrides={"sft": [], "grpo": []}, ood=True)
    result = recipe.report()
    assert result["ood"]["ood_medium-fill"]["grpo"]["success"]["mean"] == pytest.approx(30.0)
    text = (tmp_path / "results.md").read_text()
    assert "out of distribution, easy-fill: 10 puzzles" in text and "out of distribution, medium-fill" in text


def test_ood_needs_a_recipe_with_ood_splits(tmp_path):
    with pytest.raises(ValueError, match="no out-of-distribution splits"):
        Recipe("sokoban", tmp_path, [], seed=0, reuse=False, overrides={"sft": [], "grpo": []}, ood=True)
