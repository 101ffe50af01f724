"""Flow matching: the noise schedule (``schedule``), single denoising steps (``steps``) and the rollout sampler with
Wan 2.2 TI2V first-frame conditioning (``sampler``). Import the submodules directly; this package imports nothing."""
