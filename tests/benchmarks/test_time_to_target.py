"""benchmarks/time_to_target.py: the curve, time-to-target and ratio logic over plain points, the fit arguments
and run states of each variant, and (slow) the script end to end on a tiny GRPO setting: runs, resumes, skips."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))  # as `python benchmarks/...` does
import time_to_target as ttt  # noqa: E402

from videoreason.stats import proportion_interval  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def point(step: int, wall_min: float, sr: float, n: int = 32) -> ttt.Point:
    return ttt.Point(step, step * 16, wall_min * 60, proportion_interval(sr / 100, n).scaled(100))


START = proportion_interval(0.5, 32).scaled(100)


# ---------------------------------------------------------------- reading metrics into points


def test_latest_entry_of_a_step_wins():
    # a resumed run logs step 1 again after its checkpoint at step 0; the later entry is the one that counts
    assert ttt.latest_per_step([(0, 10, 1.0), (1, 11, 2.0), (1, 20, 3.0), (2, 21, 4.0)]) == {0: 1.0, 1: 3.0, 2: 4.0}


def test_step_seconds_add_rollout_reward_and_train():
    assert ttt.step_seconds([{0: 1.0, 1: 2.0}, {0: 0.5, 1: 0.5}, {0: 3.0, 1: 1.0}]) == {0: 4.5, 1: 3.5}


def test_curve_counts_steps_rollouts_and_wall_time_up_to_each_validation():
    seconds = {s: 10.0 for s in range(6)}  # logger steps 0..5 = GRPO steps 1..6, 10 s each
    curve = ttt.build_curve({2: 0.25, 5: 0.5}, seconds, rollouts_per_step=16, n_val=32)
    assert [(p.step, p.rollouts, p.wall_s) for p in curve] == [(3, 48, 30.0), (6, 96, 60.0)]
    assert curve[1].success.mean == 50.0 and curve[1].success.low < 50.0 < curve[1].success.high  # Wilson, in %


# ---------------------------------------------------------------- time to target, ratios, table


def test_time_to_target_is_the_first_validation_at_or_above_it_not_an_interpolation():
    points = [point(5, 1.0, 50.0), point(10, 2.0, 75.0), point(15, 3.0, 62.5), point(20, 4.0, 90.0)]
    hit = ttt.first_at_target(points, 70.0)
    assert hit is not None and hit.step == 10 and hit.wall_s == 120.0  # not 1.8 min, where a line would cross 70
    assert ttt.first_at_target(points, 62.5).step == 10  # SR 75 at step 10 comes before the 62.5 at step 15
    assert ttt.first_at_target(points, 75.0).step == 10  # at the target counts
    exact = ttt.default_target(proportion_interval(13 / 32, 32).scaled(100), gain=20.0)  # 40.625 + 20
    assert ttt.first_at_target([point(5, 1.0, 100 * 21 / 32)], exact) is not None  # 65.625 >= 60.625
    assert ttt.first_at_target(points, 90.1) is None
    assert ttt.first_at_target([], 10.0) is None


def test_default_target_is_the_start_plus_the_gain_unless_given():
    assert ttt.default_target(START, 20.0) == pytest.approx(70.0)
    assert ttt.default_target(START, 20.0, target=55.0) == 55.0


def test_summary_ratios_to_all_steps_and_final_sr_against_it():
    curves = {"all_steps": [point(5, 10.0, 60.0), point(10, 20.0, 75.0)],
              "esf_k3": [point(5, 4.0, 72.0), point(10, 8.0, 71.0)],
              "esf_k1": [point(5, 2.0, 50.0), point(10, 4.0, 55.0)]}
    rows = {r.variant: r for r in ttt.summarise(curves, target=70.0)}
    assert rows["all_steps"].target_min == 20.0 and rows["all_steps"].ratio == 1.0
    assert rows["esf_k3"].target_min == 4.0 and rows["esf_k3"].ratio == pytest.approx(0.2)
    assert rows["esf_k1"].target_min is None and rows["esf_k1"].ratio is None  # not reached
    assert (rows["esf_k3"].steps, rows["esf_k3"].rollouts, rows["esf_k3"].wall_min) == (10, 160, 8.0)
    assert rows["esf_k3"].final.mean == 71.0  # SR at the end, not the best
    assert rows["all_steps"].final_vs_reference and not rows["esf_k3"].final_vs_reference
    table = ttt.markdown_table(list(rows.values()), START, 70.0)
    assert "| esf_k3 | 10 | 160 | 8.00 | 71.0 [" in table and "| 4.00 | 0.20 | no |" in table
    assert "| esf_k1 |" in table and "| not reached | - | no |" in table
    assert "not interpolated" in table


def test_no_ratio_without_the_reference_or_when_it_never_reaches_the_target():
    curves = {"esf_k3": [point(5, 4.0, 80.0)], "esf_k1": [point(5, 2.0, 90.0)]}
    rows = ttt.summarise(curves, target=70.0)  # all_steps not run
    assert all(r.target_min is not None and r.ratio is None and r.final_vs_reference is None for r in rows)
    curves["all_steps"] = [point(5, 10.0, 60.0)]  # run, but never at the target
    rows = {r.variant: r for r in ttt.summarise(curves, target=70.0)}
    assert rows["esf_k3"].ratio is None and rows["esf_k3"].final_vs_reference is True
    assert ttt.ratio(3.0, None) is None and ttt.ratio(None, 3.0) is None and ttt.ratio(3.0, 6.0) == 0.5


def test_failed_variant_has_a_row_and_no_numbers():
    rows = ttt.summarise({"all_steps": [point(5, 10.0, 80.0)]}, target=70.0, failed=["esf_k1"])
    assert [(r.variant, r.failed) for r in rows] == [("all_steps", False), ("esf_k1", True)]
    assert "| esf_k1 | failed" in ttt.markdown_table(rows, START, 70.0)
    assert rows[1].to_json()["time_to_target_min"] is None


def test_plot_writes_a_png(tmp_path):
    out = ttt.plot({"all_steps": [point(5, 10.0, 60.0)], "esf_k3": []}, START, 70.0, tmp_path / "f.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- variants, arguments, run states


def test_every_variant_names_a_step_plan_that_builds():
    assert ttt.REFERENCE in ttt.VARIANTS
    callbacks = importlib.import_module("videoreason.callbacks")
    for variant in ttt.VARIANTS.values():
        name, init_args = variant.plan
        plan = getattr(callbacks, name)(**init_args)
        assert plan.plan(0, 10).count("sde") >= 1


def test_fit_args_of_a_variant():
    kwargs = dict(config="c.yaml", start="trapfield_plateau", data="d", run_dir=Path("o/inner_epochs2"), steps=60,
                  every=5, validation=(10, 8.0), extra=["--model.init_args.sampling.num_steps", "8"])
    args = ttt.fit_args(ttt.VARIANTS["inner_epochs2"], **kwargs)
    value = dict(zip(args[1::2], args[2::2], strict=False))
    assert args[0] == "fit" and value["--trainer.max_steps"] == "120"  # 2 optimizer steps per batch: 60 batches
    assert value["--model.init_args.init_from"] == "trapfield_plateau"
    assert (value["--trainer.val_check_interval"], value["--trainer.check_val_every_n_epoch"]) == ("5", "null")
    assert value["--trainer.log_every_n_steps"] == "1"
    assert args[-4:] == ["--model.init_args.val_steps", "10", "--model.init_args.val_shift", "8.0"]
    assert args.index("--model.init_args.optimization.inner_epochs") > args.index(
        "--model.init_args.sampling.num_steps")  # the variant's own settings after the user's
    plan = json.loads(args[args.index("--config", args.index("--config") + 1) + 1])
    assert [c["class_path"] for c in plan["trainer"]["callbacks"]] == [
        "videoreason.callbacks.EarlyStepFocus", "videoreason.callbacks.PlotCurves"]
    fewer = ttt.fit_args(ttt.VARIANTS["fewer_steps"], **kwargs)
    assert fewer[fewer.index("--trainer.max_steps") + 1] == "60"
    assert fewer.index("6") > fewer.index("8")  # the variant's num_steps after the user's
    assert ttt.fit_args(ttt.VARIANTS["all_steps"], resume=True, **kwargs)[-2:] == ["--ckpt_path", "last"]


def test_run_state(tmp_path):
    run = tmp_path / "esf_k3"
    assert ttt.run_state(run, 60, 60) == "new"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert ttt.run_state(run, 60, 60) == "resume"
    (run / "adapter").mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"trainer": {"max_steps": 60}}))
    assert ttt.run_state(run, 60, 60) == "read"
    assert ttt.run_state(run, 80, 80) == "resume"  # asked for more steps: continue the finished fit
    (run / ttt.RESULT_FILE).write_text(json.dumps({"planned_steps": 60}))
    assert ttt.run_state(run, 60, 60) == "done"
    assert ttt.run_state(run, 80, 80) == "resume"


def test_an_out_folder_keeps_its_settings_and_only_the_steps_may_grow(tmp_path):
    settings = {"config": "c.yaml", "start_model": "s", "data": "d", "task": "maze", "steps": 20, "every": 5,
                "extra_args": []}
    ttt.check_settings(tmp_path, settings)
    ttt.check_settings(tmp_path, {**settings, "steps": 40})
    with pytest.raises(SystemExit, match="start_model"):
        ttt.check_settings(tmp_path, {**settings, "start_model": "other"})


def test_steps_must_be_a_multiple_of_the_validation_interval(tmp_path):
    with pytest.raises(SystemExit):
        ttt.main(["--data", str(tmp_path), "--out", str(tmp_path / "o"), "--steps", "7", "--every", "5"])


# ---------------------------------------------------------------- end to end


TINY = ["--model.init_args.transformer", "tiny", "--data.init_args.batch_size", "1",
        "--data.init_args.num_workers", "0", "--model.init_args.lora.rank", "4",
        "--model.init_args.sampling.group_size", "2", "--model.init_args.sampling.num_steps", "6",
        "--model.init_args.sampling.batch_size", "2", "--model.init_args.sampling.reward_workers", "1",
        "--data.init_args.num_val_puzzles", "2", "--trainer.enable_progress_bar", "false"]


@pytest.mark.slow
def test_runs_variants_resumes_them_and_skips_finished_ones(tmp_path, maze_dataset, capsys):
    out = tmp_path / "ttt"
    base = ["--config", str(ROOT / "configs" / "maze" / "grpo_tiny.yaml"), "--start", "null",
            "--data", str(maze_dataset), "--out", str(out), "--every", "1", "--target", "0", *TINY]
    assert ttt.main([*base, "--steps", "1", "--variants", "esf_k1", "all_steps"]) == 0
    summary = json.loads((out / "time_to_target.json").read_text())
    rows = {r["variant"]: r for r in summary["variants"]}
    assert list(rows) == ["all_steps", "esf_k1"]  # the reference runs first
    for row in rows.values():
        assert row["steps"] == 1 and row["rollouts"] == 2 and row["wall_min"] > 0
        assert row["time_to_target_min"] == row["wall_min"]  # target 0: reached at the first validation
    assert rows["all_steps"]["ratio_to_reference"] == 1.0
    assert rows["esf_k1"]["ratio_to_reference"] == pytest.approx(rows["esf_k1"]["wall_min"]
                                                                 / rows["all_steps"]["wall_min"])
    assert summary["start"]["sr"] == 0.0 and (out / "start" / ttt.RESULT_FILE).is_file()
    assert "| esf_k1 | 1 | 2 |" in (out / "time_to_target.md").read_text()
    assert (out / "time_to_target.png").stat().st_size > 0
    config = yaml.safe_load((out / "esf_k1" / "config.yaml").read_text())
    assert config["trainer"]["callbacks"][0]["init_args"] == {"num_sde_steps": 1}
    assert config["model"]["init_args"]["val_steps"] == 6  # the start's validation sampler

    first = json.loads((out / "esf_k1" / ttt.RESULT_FILE).read_text())["curve"]
    assert ttt.main([*base, "--steps", "2", "--variants", "esf_k1"]) == 0  # more steps: continues the fit
    assert "--ckpt_path last" in (out / "esf_k1.log").read_text()
    curve = json.loads((out / "esf_k1" / ttt.RESULT_FILE).read_text())["curve"]
    assert [p["step"] for p in curve] == [1, 2] and curve[0] == first[0]
    assert curve[1]["wall_s"] > curve[0]["wall_s"] and curve[1]["rollouts"] == 4

    log = (out / "esf_k1.log").read_text()
    capsys.readouterr()
    assert ttt.main([*base, "--steps", "2", "--variants", "esf_k1"]) == 0  # finished: read, not run again
    assert "done before" in capsys.readouterr().out and (out / "esf_k1.log").read_text() == log
    assert json.loads((out / "time_to_target.json").read_text())["variants"][0]["steps"] == 2
