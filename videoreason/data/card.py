"""The dataset card: a ``README.md`` in every dataset folder that says what it holds and how to make it again, so a
folder can be shared as it is (Hugging Face's dataset-card layout: YAML front matter, then prose).

Everything on the card is read from the folder (``metadata.csv`` and ``spec.json``): the groups of samples (task,
level, split) in the order they were generated, their base seeds, the render spec, and the ``videoreason data
generate`` commands that rebuild the folder byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from videoreason.atomic import write_atomic
from videoreason.data.dataset import metadata_path, read_rows
from videoreason.tasks.render import RenderSpec

CARD = "README.md"
SEED_STRIDE = 1_000_000  # a sample's seed is split code * 1e12 + base seed * 1e6 + index (data.generate)


@dataclass(frozen=True)
class Group:
    """The samples of one task, level and split, with the base seed they were generated from."""

    task: str
    difficulty: str
    split: str
    seed: int
    count: int


def groups(root: str | Path) -> list[Group]:
    """The folder's sample groups, in the order their first sample was written."""
    counts: dict[tuple[str, str, str, int], int] = {}
    for row in read_rows(root):
        key = (row["task"], row["difficulty"], row["split"], int(row["seed"]) % 10**12 // SEED_STRIDE)
        counts[key] = counts.get(key, 0) + 1
    return [Group(*key, count) for key, count in counts.items()]


def preset_flags(spec: RenderSpec) -> list[str]:
    """The ``data generate`` flags that give ``spec``: a preset and its overrides (``--spec wan --frames 49``);
    ``ValueError`` when no preset does (a margin or palette set through the Python API)."""
    values = {"height": spec.height, "width": spec.width, "frames": spec.num_frames, "fps": spec.fps}
    for name in ("tiny", "wan"):
        preset = getattr(RenderSpec, name)
        if preset(height=spec.height, width=spec.width, num_frames=spec.num_frames, fps=spec.fps) != spec:
            continue
        default = preset()
        defaults = {"height": default.height, "width": default.width, "frames": default.num_frames, "fps": default.fps}
        return ([] if name == "tiny" else ["--spec", name]) + [
            f for key, value in values.items() if value != defaults[key] for f in (f"--{key}", str(value))]
    raise ValueError("no `data generate` preset gives this spec")


def card_text(root: str | Path) -> str:
    """The dataset card of ``root`` (see the module docstring)."""
    root = Path(root)
    spec = RenderSpec.from_dict(json.loads((root / "spec.json").read_text()))
    found = groups(root)
    tasks = sorted({g.task for g in found})
    try:
        flags = " ".join(preset_flags(spec))
        commands = [" ".join(["videoreason data generate", f"--task {g.task}", f"--difficulty {g.difficulty}",
                              f"--split {g.split}", f"--num {g.count}", f"--seed {g.seed}", flags,
                              f"--out {root.name}"]).replace("  ", " ") for g in found]
    except ValueError:  # a spec made through the Python API (margin, palette, ...): spec.json has it
        commands = []
    lines = [
        "---",
        f"tags: [videoreason, video, verifiable-rewards, {', '.join(tasks)}]",
        f"size: {sum(g.count for g in found)} videos",
        "---",
        "",
        f"# {root.name}",
        "",
        f"Puzzle solution videos for {', '.join(tasks)}, rendered from rule-based planner solutions by videoreason. "
        "Every video verifies against its task's rules (checked after H.264 encoding when it was written).",
        "",
        "| task | level | split | videos | base seed |",
        "|---|---|---|---|---|",
        *(f"| {g.task} | {g.difficulty} | {g.split} | {g.count} | {g.seed} |" for g in found),
        "",
        f"Videos: {spec.width}x{spec.height} pixels, {spec.num_frames} frames at {spec.fps} fps, H.264 "
        f"(`spec.json` holds the full render spec and palette).",
        "",
        "## Held-out splits",
        "",
        "Sample `i` of a split with base seed `b` is drawn from seed `split code * 10^12 + b * 10^6 + i` "
        "(train 0, val 1, test 2), so splits never share a seed. A puzzle whose board is already in another split "
        "of the same task is skipped; for tasks whose rules do not change under rotation and reflection, so is "
        "every rotated or mirrored copy of such a board. The splits generated first keep their boards, so generate "
        "`test` first to hold it out from everything generated after it.",
        "",
        "## Files",
        "",
        "- `metadata.csv`: one row per sample (id, video, prompt, first-frame image, task, puzzle file, split, "
        "seed, level, frames, size, fps)",
        "- `videos/*.mp4`: solution videos; `images/*.png`: their first frames (the model's input)",
        "- `puzzles/*.json`: each puzzle and its planner solution",
        "- `preview.png`: a contact sheet of a few videos",
        "",
        "## Make it again",
        "",
    ]
    if commands:
        lines += ["These commands, in this order, rebuild the folder (the order keeps the held-out boards):", "",
                  "```", *commands, "```"]
    else:
        lines += ["The spec was set through the Python API (`videoreason.data.generate.generate_dataset`) with "
                  "`spec.json`'s values; the table above gives the task, level, split, count and base seed of "
                  "each call, in order."]
    lines += ["", "Check it: `videoreason data verify --data " + root.name + "` re-parses every video (100% on "
              "every metric)."]
    return "\n".join(lines) + "\n"


def write_card(root: str | Path) -> Path:
    """Write ``root/README.md`` (replacing it); returns its path. A folder with no samples gets none."""
    root = Path(root)
    path = root / CARD
    if metadata_path(root).is_file() and (root / "spec.json").is_file():
        write_atomic(path, card_text(root).encode())
    return path
