"""Weight EMA (core.training.averaging): validation and model.pt use the average, computed
here independently in float64; the checkpoint keeps the raw weights; resuming continues the
average exactly as an uninterrupted run does."""
import pytest
import torch

from core.events import EpochEnd
from core.training.averaging import ema_decay
from core.training.callbacks import TrainingCallback
from core.training.trainer import Trainer
from tests.conftest import tiny_config


class Shadow(TrainingCallback):
    """Records the raw weights after every step and averages them itself, in float64."""

    def __init__(self, decay):
        self.decay, self.step, self.avg, self.val_acc = decay, 0, None, []

    def on_fit_start(self, loop):
        self.model = loop.model
        self.avg = {n: p.detach().double().clone() for n, p in loop.model.named_parameters()}

    def on_train_batch_end(self, loop, epoch, batch):
        self.step += 1
        d = ema_decay(self.decay, self.step)
        for n, p in self.model.named_parameters():
            self.avg[n] = d * self.avg[n] + (1 - d) * p.detach().double()

    def on_event(self, event):
        if isinstance(event, EpochEnd):
            self.val_acc.append(event.val_acc)


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_model_pt_holds_the_average_and_the_checkpoint_the_raw_weights(image_folder, tmp_path):
    shadow = Shadow(0.9)
    cfg = tiny_config(image_folder, epochs=1, freeze_epochs=0, ema=0.9, lr=3e-3)
    trainer = Trainer(cfg, [shadow], run_dir=tmp_path / "run")
    trainer.fit()
    saved = _load(tmp_path / "run" / "model.pt")["state_dict"]
    ck = _load(tmp_path / "run" / "checkpoint.pt")
    raw = dict(trainer.model.named_parameters())  # back to the raw weights after validation
    for name, avg in shadow.avg.items():
        assert torch.allclose(saved[name].double(), avg, atol=1e-5), name
        assert torch.equal(ck["state_dict"][name], raw[name].detach())
    moved = [n for n in shadow.avg if not torch.equal(saved[n], ck["state_dict"][n])]
    assert len(moved) > 10  # the average is not the raw weights
    assert ck["callbacks"]["WeightAveraging"]["step"] == shadow.step


@pytest.mark.slow
def test_resuming_continues_the_saved_average(image_folder, tmp_path):
    cfg = dict(freeze_epochs=0, ema=0.8, lr=3e-3)
    run = tmp_path / "run"
    Trainer(tiny_config(image_folder, epochs=1, **cfg), run_dir=run).fit()
    saved = _load(run / "checkpoint.pt")["callbacks"]["WeightAveraging"]

    class Resumed(Shadow):  # starts from the checkpoint's average and step, not the weights
        def on_fit_start(self, loop):
            names = [n for n, _ in loop.model.named_parameters()]
            self.model, self.step = loop.model, saved["step"]
            self.avg = {n: a.double() for n, a in zip(names, saved["average"])}

    shadow = Resumed(0.8)
    Trainer(tiny_config(image_folder, epochs=2, **cfg), [shadow], run_dir=run,
            resume=True).fit()
    model = _load(run / "model.pt")
    if model["metrics"]["epoch"] == 2:  # (model.pt is replaced only by a better epoch)
        for name, avg in shadow.avg.items():
            assert torch.allclose(model["state_dict"][name].double(), avg, atol=1e-5), name
    ck = _load(run / "checkpoint.pt")["callbacks"]["WeightAveraging"]
    assert ck["step"] == 2 * saved["step"]
    for a, (name, avg) in zip(ck["average"], shadow.avg.items()):
        assert torch.allclose(a.double(), avg, atol=1e-5), name


def test_ema_is_off_by_default_and_validated(image_folder):
    import pytest

    from core.errors import TransferLabError

    assert tiny_config(image_folder).ema == 0
    with pytest.raises(TransferLabError, match="--ema must be in"):
        tiny_config(image_folder, ema=1.0).validate()
