"""Lightning callbacks: step plans (Early-Step Focus and the anchors it is compared to), sample-video logging,
run-directory checkpoints, adapter export, curves and the step progress bar."""

from videoreason.callbacks.checkpoint import RunCheckpoint
from videoreason.callbacks.curves import PlotCurves
from videoreason.callbacks.export import ExportAdapter
from videoreason.callbacks.progress import StepProgressBar
from videoreason.callbacks.samples import LogSampleVideos
from videoreason.callbacks.step_plans import AllSteps, EarlyStepFocus, RandomSubset, SlidingWindow, StepPlan

__all__ = ["AllSteps", "EarlyStepFocus", "ExportAdapter", "LogSampleVideos", "PlotCurves", "RandomSubset",
           "RunCheckpoint", "SlidingWindow", "StepPlan", "StepProgressBar"]
