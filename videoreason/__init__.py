"""videoreason: make video diffusion models solve rule-checked puzzles (SFT + SDE-GRPO with verifiable rewards).

Importing the package is cheap; heavy dependencies (torch, diffusers, mlflow) load where they are used.
"""

__version__ = "0.1.0"
