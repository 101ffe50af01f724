"""Lightning callbacks: step plans (Early-Step Focus and the anchors it is compared to), sample-video logging,
run-directory checkpoints, adapter export, curves, the step progress bar and stopping at a validation plateau."""

from videoreason.callbacks.checkpoint import RunCheckpoint
from videoreason.callbacks.curves import PlotCurves
from videoreason.callbacks.export import ExportAdapter
from videoreason.callbacks.plateau import StopAtPlateau
from videoreason.callbacks.progress import ProgressJournal, StepProgressBar
from videoreason.callbacks.samples import LogSampleVideos
from videoreason.callbacks.step_plans import AllSteps, EarlyStepFocus, RandomSubset, SlidingWindow, StepPlan

__all__ = ["AllSteps", "EarlyStepFocus", "ExportAdapter", "LogSampleVideos", "PlotCurves", "RandomSubset",
           "ProgressJournal", "RunCheckpoint", "SlidingWindow", "StepPlan", "StepProgressBar", "StopAtPlateau"]
