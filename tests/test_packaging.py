"""A non-editable install works: the wheel carries every file read at run time (run configs, reward presets, the
packaged SFT model).

Slow: builds the wheel and installs it into a fresh virtual environment that sees this environment's
dependencies but not the source tree, then runs the commands a user would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str | Path, cwd: Path) -> str:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.slow
def test_wheel_installs_and_finds_its_configs(tmp_path):
    run(sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist",
        cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("videoreason-*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).strip())
    # this environment's dependencies, but none of its .pth files (the editable install of the source tree)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel,
        cwd=tmp_path)
    where = run(python, "-c", "import videoreason; print(videoreason.__file__)", cwd=tmp_path)
    assert where.startswith(str(site)), where  # the installed copy, not the checkout

    assert "--task" in run(venv / "bin" / "videoreason", "recipe", "--help", cwd=tmp_path)
    reward = run(python, "-c", "from videoreason.rewards import load_reward; print(type(load_reward('maze_dense'))"
                 ".__name__)", cwd=tmp_path)
    assert reward.strip() == "WeightedSum"
    printed = run(venv / "bin" / "videoreason", "fit", "--config", "configs/maze/sft_tiny.yaml", "--print_config",
                  cwd=tmp_path)
    assert "videoreason.phases.sft.SFTModule" in printed
    printed = run(venv / "bin" / "videoreason", "fit", "--config", "configs/wan2.2_ti2v_5b/grpo_480x832x33.yaml",
                  "--print_config", cwd=tmp_path)
    assert "WeightedSum" in printed  # its reward preset, named relative to the packaged config, was found
    printed = run(venv / "bin" / "videoreason", "fit", "--config", "configs/maze/sft_tiny.yaml",
                  "--trainer.callbacks+=callbacks/ema.yaml", "--print_config", cwd=tmp_path)
    assert "EMAWeightAveraging" in printed  # a packaged callback preset, found without the repository
    card = run(python, "-c", "from videoreason.resources import PretrainedModel as P; m = P('maze_fill_steps'); "
               "print(m.card['optimizer_steps'], m.path.is_relative_to(__import__('videoreason').__path__[0]), "
               "(m.path / 'transformer' / 'diffusion_pytorch_model.safetensors').stat().st_size > 1e6)", cwd=tmp_path)
    assert card.split() == ["1075", "True", "True"]
