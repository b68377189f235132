"""The training side of the out-of-distribution score (core.inference.ood): a callback that
calibrates model.pt once a run has finished, before the run is marked finished."""
from __future__ import annotations

from core.errors import TransferLabError
from core.inference import ood
from core.runs.layout import RunPaths
from core.training.callbacks import TrainingCallback


class OodCalibration(TrainingCallback):
    """Rank 0 only, finished runs only (a stopped run keeps its model.pt as it is); a
    failure costs the score, never the run."""

    def on_fit_done(self, loop, event) -> None:
        model_file = RunPaths(loop.run_dir).model
        if event.status != "finished" or not loop.rt.dist.is_main or not model_file.is_file():
            return
        try:
            stats = ood.calibrate(model_file, loop.data.train, loop.data.val, loop.rt.device,
                                  loop.state)
        except (TransferLabError, RuntimeError, ValueError) as exc:
            loop.log(f"Unfamiliar-image check not calibrated: {exc}")
            return
        if stats is None:
            loop.log(f"Unfamiliar-image check not calibrated: fewer than {ood.MIN_VALIDATION} "
                     f"validation images.")
            return
        loop.log(f"Unfamiliar-image check calibrated on {stats['fit_images']} training and "
                 f"{stats['val_images']} validation images: photos farther from the classes "
                 f"than {ood.QUANTILE:.0%} of the validation images will be flagged.")
