"""The recipe runner: variants map to the right configs, the report computes CIs from per-puzzle eval rows and logs
to MLflow, a failing phase names its log, and an existing output folder is not overwritten."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import videoreason.recipe as recipe_module
from videoreason.recipe import RECIPES, Recipe, recipe, run, variants
from videoreason.resources import PretrainedModel, config_root
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


@pytest.mark.parametrize("name", sorted(set(RECIPES) - {"maze3d"}))
def test_recipe_frames_give_every_board_cell_one_token(name):
    data = RECIPES[name]
    solver = resolve_task(data.task or name)
    boards = [solver.initial_state(solver.generate(np.random.default_rng(0), level))
              for level in (data.difficulty, *data.levels)]
    assert all(b.shape[0] == b.shape[1] for b in boards)
    assert data.size == 8 * max(b.shape[0] for b in boards)  # PixelCodec patch 4 x Wan patch 2 = 8 px a block
    assert data.cell == (8 if data.levels else None)  # smaller boards of a mixed dataset at 8 px a block too
    cell = [] if data.cell is None else ["--cell", str(data.cell)]
    assert data.render == ["--height", str(data.size), "--width", str(data.size), "--frames", str(data.frames), *cell]


def test_the_maze3d_recipe_frame_is_the_smallest_its_oblique_view_reads_and_a_token_is_a_block():
    import yaml

    from videoreason.imports import import_path

    data, task = RECIPES["maze3d"], resolve_task("maze3d")  # projected blocks: the codec reads them one by one
    config = yaml.safe_load((config_root() / "maze3d" / data.sft_config).read_text())["model"]["init_args"]["codec"]
    codec = import_path(config["class_path"])(**config["init_args"])
    for level in (data.difficulty, *(name for name, _ in data.ood)):
        assert task.frame_size(level, 0, 0) == (data.size, data.size)
        board = task.initial_state(task.generate(np.random.default_rng(0), level))
        _, _, h, w = codec.latent_shape(data.frames, data.size, data.size)
        assert (h // 2, w // 2) == board.shape  # Wan patch 2: one token per block of the stacked floors


def _commands(tmp_path, monkeypatch, **kwargs) -> list[list[str]]:
    """The commands a maze recipe runs (none is run)."""
    commands = []
    monkeypatch.setattr(recipe_module, "run",
                        lambda command, log, name="", journal=None: commands.append(command) or 1.0)
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


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_configs_exist_and_match_the_level(name):
    data = RECIPES[name]
    task = data.task or name
    assert {data.difficulty, *data.levels, *(level for level, _ in data.ood)} <= set(resolve_task(task).levels)
    for config in (data.sft_config, data.grpo_config):
        assert (recipe_module.CONFIGS / task / config).is_file()


def test_the_mixed_size_maze_recipe_writes_both_levels_into_one_dataset(tmp_path, monkeypatch):
    commands = []
    monkeypatch.setattr(recipe_module, "run",
                        lambda command, log, name="", journal=None: commands.append(command) or 1.0)
    monkeypatch.setattr(Recipe, "report", lambda self: {})
    monkeypatch.setattr(Recipe, "fit_to_plateau", lambda self: tmp_path / "sft" / "plateau_model")
    (tmp_path / "data").mkdir()  # what the (skipped) data commands would make
    runner = Recipe("maze_mixed", tmp_path, ["sft_more"], seed=0, reuse=False,
                    overrides={"sft": [], "grpo": []}, ood=True, plateau=True)
    assert (runner.name, runner.task) == ("maze_mixed", "maze")
    monkeypatch.setattr(Recipe, "fit_sft_more", lambda self, sft: None)
    runner.run_all()
    data = [c for c in commands if c[:2] == ["data", "generate"]]
    assert [(_arg(c, "--difficulty"), _arg(c, "--split")) for c in data] == [
        (level, split) for level in ("tiny-fill", "easy-fill") for split in ("test", "val", "train")
    ] + [("medium-fill", "test")]
    assert {_arg(c, "--out") for c in data[:6]} == {str(tmp_path / "data")}  # one folder, one spec
    assert all(_arg(c, "--cell") == "8" and _arg(c, "--height") == "72" for c in data[:6])
    assert _arg(data[6], "--height") == "88" and "--cell" not in data[6]
    grpo = next(c for c in commands if c[0] == "fit")
    assert _arg(grpo, "--config").endswith("configs/maze/grpo_tiny_fill_mixed.yaml")
    assert sorted(p.name for p in (tmp_path / "data").glob(".done_*")) == sorted(
        f".done_{split}_{num}_{level}" for level in ("tiny-fill", "easy-fill")
        for split, num in (("test", 200), ("val", 64), ("train", 4000)))


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
    bar = "verify: 90%| 19/21 [00:05<00:00]"
    assert latest_progress(bar + "\x1b[A") == bar  # a cursor move is not shown
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
        Recipe("flowfree", tmp_path, [], seed=0, reuse=False, overrides={"sft": [], "grpo": []}, ood=True)


def _fair_commands(tmp_path, monkeypatch, plateau_val: dict[str, float] | None = None, **kwargs) -> list[list[str]]:
    """The commands of a maze recipe with ``sft_more`` (GRPO's phase "takes" 65 s), none run. With
    ``plateau_val`` (weights -> validation SR) the SFT phase "writes" a plateau run: validations at steps 250-1000,
    the best at 500, whose checkpoint holds EMA and raw weights."""
    import torch

    import videoreason.models.export as export

    commands = []

    def fake_run(command: list[str], log: Path, name: str = "", journal: Path | None = None) -> float:
        commands.append(command)
        if command[0] == "fit" and _arg(command, "--trainer.default_root_dir").endswith("sft"):
            run_dir = Path(_arg(command, "--trainer.default_root_dir"))
            (run_dir / "checkpoints").mkdir(parents=True)
            validations = [{"step": s, "success": r, "n": 64} for s, r in ((250, .3), (500, .5), (750, .4), (1000, .4))]
            (run_dir / "plateau.json").write_text(json.dumps({"step": 1000, "samples_seen": 32000,
                                                              "validations": validations}))
            torch.save({"state_dict": {"w": torch.ones(1)}, "current_model_state": {"w": torch.zeros(1)},
                        "averaging_state": {}}, run_dir / "checkpoints" / "step500.ckpt")
        if command[0] == "eval" and _arg(command, "--split") == "val":
            weights = "raw" if _arg(command, "--ckpt").endswith("-raw.ckpt") else "ema"
            rate = plateau_val[weights]
            _eval_rows(Path(_arg(command, "--out")), [1.0] * round(64 * rate) + [0.0] * (64 - round(64 * rate)))
        return 65.0

    monkeypatch.setattr(recipe_module, "run", fake_run)
    monkeypatch.setattr(Recipe, "report", lambda self: {})
    monkeypatch.setattr(export, "load_module", lambda path: path)
    monkeypatch.setattr(export, "export_module",
                        lambda module, out: Path(out).mkdir() or (Path(out) / "from").write_text(str(module)))
    (tmp_path / "data").mkdir()
    Recipe("maze", tmp_path, ["sft_more"], seed=3, reuse=False, overrides={"sft": [], "grpo": []}, **kwargs).run_all()
    return commands


def test_sft_more_continues_sft_from_the_same_start_for_grpos_wall_time(tmp_path, monkeypatch):
    start = PretrainedModel("maze_fill_steps")
    commands = _fair_commands(tmp_path, monkeypatch)
    fits = [c for c in commands if c[0] == "fit"]
    assert [Path(_arg(c, "--trainer.default_root_dir")).name for c in fits] == ["grpo", "sft_more"]
    more = fits[1]
    assert Path(_arg(more, "--config")).name == "sft_tiny_fill_steps.yaml"  # plain SFT, the SFT model's config
    assert _arg(more, "--model.init_args.transformer") == str(start.path / "transformer")  # GRPO's start
    assert _arg(more, "--trainer.max_time") == "00:00:01:05" and _arg(more, "--trainer.max_steps") == "-1"
    evals = [c for c in commands if c[0] == "eval"]
    assert [_arg(c, "--out") for c in evals][-1] == str(tmp_path / "sft_more" / "eval" / "test")
    assert {_arg(c, "--seed") for c in evals} == {"3"}  # the same noise seeds for every model


def test_sft_more_needs_grpos_measured_time(tmp_path):
    recipe = Recipe("maze", tmp_path, ["sft_more"], seed=0, reuse=True, overrides={"sft": [], "grpo": []})
    with pytest.raises(ValueError, match="GRPO's wall time"):
        recipe.fit_sft_more(tmp_path / "sft")


@pytest.mark.parametrize(("val", "chosen"), [({"ema": .5, "raw": .6}, "raw"), ({"ema": .5, "raw": .5}, "ema")])
def test_plateau_trains_sft_until_validation_stops_and_starts_grpo_from_its_best_model(tmp_path, monkeypatch, val,
                                                                                      chosen):
    import torch

    commands = _fair_commands(tmp_path, monkeypatch, plateau_val=val, plateau=True)
    data = [c for c in commands if c[0] == "data"]
    assert [(_arg(c, "--split"), _arg(c, "--num")) for c in data] == [("test", "200"), ("val", "64"),
                                                                    ("train", "4000")]
    sft = commands[3]
    assert _arg(sft, "--data.init_args.num_val_puzzles") == "64"
    presets = [a.split("=", 1)[1] for a in sft if a.startswith("--trainer.callbacks+=")]
    assert [Path(p).name for p in presets] == ["plateau.yaml", "checkpoint_every_250.yaml"]
    assert all(Path(p).is_file() for p in presets)
    checkpoints = tmp_path / "sft" / "checkpoints"
    val_evals = [_arg(c, "--ckpt") for c in commands if c[0] == "eval" and _arg(c, "--split") == "val"]
    assert val_evals == [str(checkpoints / "step500.ckpt"), str(checkpoints / "step500-raw.ckpt")]
    raw = torch.load(checkpoints / "step500-raw.ckpt", weights_only=False)
    assert raw["state_dict"]["w"].item() == 0.0 and "current_model_state" not in raw
    model = tmp_path / "sft" / "plateau_model"
    kept = "step500-raw.ckpt" if chosen == "raw" else "step500.ckpt"
    assert (model / "from").read_text() == str(checkpoints / kept)
    assert json.loads((tmp_path / "sft" / "plateau_model.json").read_text())["weights"] == chosen
    grpo = next(c for c in commands if c[0] == "fit" and _arg(c, "--trainer.default_root_dir").endswith("grpo"))
    assert _arg(grpo, "--model.init_args.init_from") == str(model)
    assert _arg(next(c for c in commands if c[0] == "eval" and _arg(c, "--split") == "test"), "--ckpt") == str(model)
    more = next(c for c in commands if c[0] == "fit" and _arg(c, "--trainer.default_root_dir").endswith("sft_more"))
    assert _arg(more, "--model.init_args.transformer") == str(model / "transformer")


def test_report_compares_grpo_with_sft_given_the_same_compute_and_records_the_plateau(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for name, wins in (("sft", 40), ("grpo", 90), ("sft_more", 50)):
        _eval_rows(tmp_path / name / "eval" / "test", [1.0] * wins + [0.0] * (200 - wins))
    (tmp_path / "sft" / "plateau.json").write_text(json.dumps(
        {"step": 1000, "samples_seen": 32000, "validations": [{"step": 500, "success": 0.5, "n": 64}]}))
    (tmp_path / "sft" / "plateau_model.json").write_text(json.dumps(
        {"step": 500, "success": 0.5, "n": 64, "weights": "raw", "val_success": {"ema": 0.5, "raw": 0.6}}))
    recipe = Recipe("maze", tmp_path, ["sft_more"], seed=0, reuse=True, overrides={"sft": [], "grpo": []},
                    plateau=True)
    recipe.times = {"sft": 3600.0, "grpo": 300.0, "sft_more": 300.0}
    result = recipe.report()
    assert result["sr_gain"]["grpo-sft_more"]["mean"] == pytest.approx(20.0)
    assert result["sr_gain"]["grpo-sft_more"]["low"] > 10
    assert result["plateau"] | {"cpu_hours": None} == {
        "best_step": 500, "best_val_success": 0.5, "stopped_step": 1000, "samples": 16000, "weights": "raw",
        "val_success": {"ema": 0.5, "raw": 0.6}, "sft_wall_s": 3600.0, "cpu_hours": None}
    text = (tmp_path / "results.md").read_text()
    assert "| sft_more | 25.0" in text and "- grpo SR - sft_more SR: +20.0 points" in text
    assert "best validation SR 50.0% at step 500 (16000 samples), stopped at step 1000" in text
    assert "raw weights, chosen on validation (ema 50.0%, raw 60.0%)" in text


def test_sft_more_gets_grpos_trainer_time_from_its_mlflow_run(tmp_path, monkeypatch):
    """The budget is GRPO's MLflow run (65 s), not the phase's wall time (90 s, process start and imports included,
    which `--trainer.max_time` would count as training time for SFT)."""
    from mlflow import MlflowClient

    from videoreason.tracking import RUN_DIR_TAG, local_tracking_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    grpo = tmp_path / "out" / "grpo"
    grpo.mkdir(parents=True)
    client = MlflowClient(local_tracking_uri(grpo))
    run = client.create_run(client.create_experiment("grpo"), start_time=1_000,
                            tags={RUN_DIR_TAG: str(grpo.resolve())}).info.run_id
    client.set_terminated(run, end_time=66_000)
    recipe = Recipe("maze", tmp_path / "out", ["sft_more"], seed=0, reuse=True, overrides={"sft": [], "grpo": []})
    recipe.times = {"grpo": 90.0}
    calls = []
    monkeypatch.setattr(Recipe, "fit", lambda self, name, config, extra, evaluate=True: calls.append(extra))
    recipe.fit_sft_more(tmp_path / "sft")
    assert _arg(calls[0], "--trainer.max_time") == "00:00:01:05"
