"""Every run config in configs/ parses and instantiates (model, data, trainer) through the LightningCLI.

Local model paths (``/models/...``) are pointed at a tiny diffusers folder of the same layout and the dataset at a
tiny one, so the real-size configs are checked for keys, class paths and types without their weights. Reward
configs are checked in tests/rewards.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from videoreason.trainer_cli import VideoReasonCLI

CONFIGS = Path(__file__).resolve().parents[1] / "videoreason" / "configs"
RUN_CONFIGS = sorted(p for p in CONFIGS.rglob("*.yaml") if "model" in (yaml.safe_load(p.read_text()) or {}))


def _localise(node, model_dir: Path):
    if isinstance(node, dict):
        return {k: _localise(v, model_dir) for k, v in node.items()}
    if isinstance(node, list):
        return [_localise(v, model_dir) for v in node]
    if isinstance(node, str) and node.startswith("/models/"):
        return str(model_dir)
    return node


def test_there_are_run_configs():
    names = {p.relative_to(CONFIGS).as_posix() for p in RUN_CONFIGS}
    assert {"maze/sft_tiny.yaml", "maze/grpo_tiny.yaml"} <= names
    real = {f"{model}/{phase}_480x832x{frames}.yaml" for model in ("wan2.1_1.3b", "wan2.2_ti2v_5b")
            for phase in ("sft", "grpo") for frames in (33, 81)}
    assert real <= names


@pytest.mark.parametrize("path", [p for p in RUN_CONFIGS if p.parent.name.startswith("wan")],
                         ids=lambda p: p.relative_to(CONFIGS).as_posix())
def test_real_size_config_points_at_its_own_data_and_sft_run(path):
    """A real-size config's dataset, run folder and (GRPO) SFT adapter all carry its frame count, and its header
    says how to make the dataset (frames and resolution come from the data) and how to run it."""
    config = yaml.safe_load(path.read_text())
    shape = path.stem.split("_", 1)[1]  # e.g. 480x832x33
    height, width, frames = shape.split("x")
    header = path.read_text().split("seed_everything")[0]
    assert config["data"]["init_args"]["root"].endswith(f"_{shape}")
    assert config["trainer"]["default_root_dir"] == f"runs/maze/{path.parent.name}/{path.stem}"
    assert f"videoreason fit --config configs/{path.parent.name}/{path.name}" in header
    init_args = config["model"]["init_args"]
    if "init_from" in init_args:  # GRPO: starts from the SFT run of the same model and shape
        sft = CONFIGS / path.parent.name / f"sft_{shape}.yaml"
        assert init_args["init_from"] == yaml.safe_load(sft.read_text())["trainer"]["default_root_dir"] + "/adapter"
        assert (path.parent / init_args["reward"]).is_file()
        assert config["data"]["init_args"]["root"] == yaml.safe_load(sft.read_text())["data"]["init_args"]["root"]
    else:
        assert f"--height {height} --width {width} --frames {frames}" in header
        assert config["data"]["init_args"]["root"] in header


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: p.relative_to(CONFIGS).as_posix())
def test_config_instantiates(path, tmp_path, tiny_wan_dir, tiny_wan22_dir, maze_dataset):
    config = _localise(yaml.safe_load(path.read_text()), tiny_wan22_dir if "wan2.2" in path.parent.name
                       else tiny_wan_dir)
    config["data"]["init_args"]["root"] = str(maze_dataset)
    config["trainer"]["default_root_dir"] = str(tmp_path / "run")
    init_args = config["model"]["init_args"]
    if init_args.get("init_from"):  # an SFT run's export: start from the (tiny) transformer instead
        init_args["init_from"] = None
    if isinstance(init_args.get("reward"), str):  # a reward preset path, relative to the config file
        init_args["reward"] = str(path.parent / init_args["reward"])
    embedder = init_args.get("text_embedder") or {}
    if "cache_dir" in embedder.get("init_args", {}):  # keep caches out of the repository
        embedder["init_args"]["cache_dir"] = str(tmp_path / "cache")
    local = tmp_path / path.name
    local.write_text(yaml.safe_dump(config))
    cli = VideoReasonCLI(["--config", str(local)], run=False)
    assert type(cli.model).__name__ == config["model"]["class_path"].rsplit(".", 1)[1]
    assert type(cli.datamodule).__name__ == config["data"]["class_path"].rsplit(".", 1)[1]
    assert cli.trainer.max_steps == config["trainer"]["max_steps"]
    lora = config["model"]["init_args"].get("lora")
    if lora:
        assert any("lora_A" in n for n, _ in cli.model.transformer.named_parameters())
    if "reward" in config["model"]["init_args"]:
        assert type(cli.model.reward).__name__ == "WeightedSum"
    from lightning.pytorch.loggers import MLFlowLogger

    assert isinstance(cli.trainer.logger, MLFlowLogger)
    # one checkpoint callback (a configured RunCheckpoint replaces the default), one exporter
    assert [type(c).__name__ for c in cli.trainer.checkpoint_callbacks] == ["RunCheckpoint"]
    assert sum(type(c).__name__ == "ExportAdapter" for c in cli.trainer.callbacks) == 1
    periodic = [c for c in (config["trainer"].get("callbacks") or []) if c["class_path"].endswith("RunCheckpoint")]
    if periodic:
        assert cli.trainer.checkpoint_callback._every_n_train_steps == periodic[0]["init_args"]["every_n_train_steps"]
