"""Resume, model.pt selection and the learning-rate schedule, checked against the real engine
(weights="none" or offline ImageNet models on tiny generated folders)."""
import math

import pytest
import torch
from torch import nn

from core.config import TrainConfig
from core.events import BatchEnd, EventCollector
from core.training.callbacks import TrainingCallback
from core.training.optim import build_optimizer, lr_at
from core.training.trainer import Trainer
from tests.conftest import tiny_config


tiny = tiny_config


class Probe(TrainingCallback, EventCollector):
    """Records what the loop holds right after Checkpointing has restored it."""

    def __init__(self):
        EventCollector.__init__(self)
        self.at_start = None

    def on_fit_start(self, loop):
        self.at_start = {
            "weights": {k: v.detach().clone() for k, v in loop.model.state_dict().items()},
            "moments": _opt_state_by_name(loop.model, loop.opt) if loop.opt else {},
            "epoch": loop.start_epoch}


def _opt_state_by_name(model, opt):
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: {k: (v.clone() if torch.is_tensor(v) else v) for k, v in s.items()}
            for p, s in opt.state.items()}


def test_resume_restores_weights_optimizer_state_and_lr(image_folder, tmp_path):
    run = tmp_path / "r"
    first = Trainer(tiny(image_folder, epochs=1, freeze_epochs=0, lr=2e-3), run_dir=run)
    first.fit()
    saved_weights = {k: v.clone() for k, v in first.model.state_dict().items()}
    saved_moments = _opt_state_by_name(first.model, first.opt)
    assert saved_moments, "Adam kept no state: the comparison below would be empty"

    probe = Probe()
    cfg = tiny(image_folder, epochs=2, freeze_epochs=0, lr=2e-3)
    second = Trainer(cfg, [probe], run_dir=run, resume=True)
    second.prepare()
    fresh = {k: v.clone() for k, v in second.model.state_dict().items()}
    assert any(not torch.equal(fresh[k], saved_weights[k]) for k in fresh)  # not yet loaded
    second.fit()

    got = probe.at_start
    assert got["epoch"] == 1
    assert all(torch.equal(got["weights"][k], saved_weights[k]) for k in saved_weights)
    by_name = got["moments"]  # the optimizer as the resumed run started with it
    assert set(by_name) == set(saved_moments)
    for name, moments in saved_moments.items():
        assert float(by_name[name]["step"]) == float(moments["step"]) > 0
        assert torch.equal(by_name[name]["exp_avg"], moments["exp_avg"])
        assert torch.equal(by_name[name]["exp_avg_sq"], moments["exp_avg_sq"])
    # the resumed epoch's batches run at the schedule's LR for epoch 2, not epoch 1's
    lrs = [e.lr for e in probe.of(BatchEnd)]
    assert lrs and lrs[0] == pytest.approx(lr_at(cfg, 1, 0.0))
    assert second.opt.param_groups[0]["lr"] == pytest.approx(lrs[-1])


@pytest.mark.slow
def test_resume_restores_the_lr_of_a_step_schedule(image_folder, tmp_path):
    """epochs 1-2 at lr, 3 at lr*gamma: a resume after epoch 2 must start at the lower LR."""
    run = tmp_path / "r"
    base = dict(freeze_epochs=0, lr=4e-3, scheduler="step", step_size=2, gamma=0.5)
    Trainer(tiny(image_folder, epochs=2, **base), run_dir=run).fit()
    events = EventCollector()
    resumed = Trainer(tiny(image_folder, epochs=3, **base), [events], run_dir=run, resume=True)
    resumed.fit()
    assert [e.lr for e in events.of(BatchEnd)] == pytest.approx([2e-3] * 4)
    assert [g["lr"] for g in resumed.opt.param_groups] == pytest.approx([2e-3, 2e-3])
    assert {e.epoch for e in events.of(BatchEnd)} == {3}


class HeadSaboteur(TrainingCallback):
    """Zeroes the head after the last batch of the given (1-based) epochs: every logit is
    then equal, every image is called class 0, and val accuracy is exactly 1/3 here."""

    def __init__(self, epochs):
        self.epochs, self.model_meta = set(epochs), []

    def on_train_batch_end(self, loop, epoch, batch):
        if epoch + 1 in self.epochs and batch == len(loop.loaders()[0]):
            with torch.no_grad():
                for p in loop.model.get_submodule(loop.net.head).parameters():
                    p.zero_()

    def on_validation_end(self, loop, event):  # runs after Checkpointing's save
        payload = torch.load(loop.run_dir + "/model.pt", weights_only=True)
        self.model_meta.append((event.val_acc, payload["metrics"]["epoch"]))


def test_model_pt_is_replaced_only_by_a_better_validation_score(image_folder, tmp_path):
    saboteur = HeadSaboteur(epochs={1, 3})
    cfg = tiny(image_folder, model="efficientnet_lite0", weights="imagenet", epochs=3,
               freeze_epochs=3, image_size=48, lr=3e-3)
    Trainer(cfg, [saboteur], run_dir=tmp_path / "r").fit()
    (acc1, kept1), (acc2, kept2), (acc3, kept3) = saboteur.model_meta
    assert acc1 == pytest.approx(100 / 3) and acc3 == pytest.approx(100 / 3)
    assert acc2 > acc1, "epoch 2 did not learn: the test cannot tell the two rules apart"
    assert (kept1, kept2, kept3) == (1, 2, 2)  # epoch 3 (worse) left epoch 2's model.pt


def test_model_pt_keeps_the_first_of_equal_scores(image_folder, tmp_path):
    saboteur = HeadSaboteur(epochs={1, 2})
    Trainer(tiny(image_folder, epochs=2, freeze_epochs=2), [saboteur],
            run_dir=tmp_path / "r").fit()
    assert [kept for _, kept in saboteur.model_meta] == [1, 1]


def test_cosine_schedule_matches_torchs_cosine_annealing():
    cfg = TrainConfig(lr=0.1, epochs=4, freeze_epochs=0, scheduler="cosine")
    n = 5  # batches per epoch
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * n)
    ours = []
    for epoch in range(cfg.epochs):
        for i in range(n):
            ours.append(lr_at(cfg, epoch, i / n))
            assert ours[-1] == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-12)
            opt.step()
            ref.step()
    assert ours[0] == pytest.approx(0.1) and ours[n * 2] == pytest.approx(0.05)
    assert all(a > b for a, b in zip(ours, ours[1:]))


def test_cosine_schedule_times_the_unfreeze_factor():
    cfg = TrainConfig(lr=0.1, epochs=4, freeze_epochs=2, unfreeze_lr_factor=0.1,
                      scheduler="cosine")
    cos = [0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    assert [lr_at(cfg, e) for e in range(4)] == pytest.approx(
        [0.1 * cos[0], 0.1 * cos[1], 0.01 * cos[2], 0.01 * cos[3]])


def test_the_engine_uses_the_cosine_schedule_per_batch(image_folder, tmp_path):
    events = EventCollector()
    cfg = tiny(image_folder, epochs=2, freeze_epochs=0, scheduler="cosine", lr=1e-2)
    Trainer(cfg, [events], run_dir=tmp_path / "r").fit()
    batches = events.of(BatchEnd)
    assert len(batches) == 8
    for e in batches:
        assert e.lr == pytest.approx(lr_at(cfg, e.epoch - 1, (e.batch - 1) / e.batches))
    assert batches[-1].lr < batches[0].lr / 2


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.body(x))


def test_optimizer_keeps_moments_across_a_freeze_change():
    torch.manual_seed(0)
    net = _Net()
    cfg = TrainConfig(lr=1e-2, optimizer="adam")
    net.body.requires_grad_(False)
    opt = build_optimizer(cfg, net, None, "head")
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(8, 4)).pow(2).mean().backward()
        opt.step()
    before = {n: {k: v.clone() for k, v in opt.state[p].items()}
              for n, p in net.named_parameters() if p in opt.state}
    assert set(before) == {"head.weight", "head.bias"}
    net.body.requires_grad_(True)  # the unfreeze
    opt2 = build_optimizer(cfg, net, opt, "head")
    params = dict(net.named_parameters())
    for name, moments in before.items():
        kept = opt2.state[params[name]]
        assert float(kept["step"]) == 3
        assert torch.equal(kept["exp_avg"], moments["exp_avg"])
    assert params["body.weight"] not in opt2.state  # newly trainable: fresh moments
    opt2.zero_grad()
    net(torch.randn(8, 4)).pow(2).mean().backward()
    opt2.step()
    assert float(opt2.state[params["head.weight"]]["step"]) == 4
    assert float(opt2.state[params["body.weight"]]["step"]) == 1


def test_engine_carries_head_moments_into_the_unfrozen_phase(image_folder, tmp_path):
    seen = {}

    class Watch(TrainingCallback):
        def on_epoch_start(self, loop, epoch):  # after FreezeSchedule's own on_epoch_start
            if epoch == 1:
                head = loop.model.get_submodule(loop.net.head)
                seen["head_step"] = float(loop.opt.state[head.weight]["step"])
                seen["n_trainable"] = sum(len(g["params"]) for g in loop.opt.param_groups)

    Trainer(tiny(image_folder, epochs=2, freeze_epochs=1), [Watch()],
            run_dir=tmp_path / "r").fit()
    assert seen["head_step"] == 4  # the 4 frozen-phase steps, not a fresh optimizer
    assert seen["n_trainable"] > 2  # and the optimizer now covers the unfrozen backbone
