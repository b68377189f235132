"""Easy-image skipping (core.training.sampling): which images each epoch visits, from the
losses the real loop recorded, and that a resumed run visits what the run it continues would
have."""
import pytest
import torch

from core.data.batches import BatchLoader
from core.events import EventCollector, LogLine
from core.training import sampling
from core.training.callbacks import TrainingCallback
from core.training.sampling import EasySkipping, visit_chances
from core.training.trainer import Trainer
from tests.conftest import make_folder, tiny_config


def test_chances_grow_with_the_loss_and_leave_out_the_asked_share_on_average():
    loss = torch.rand(10_000, generator=torch.Generator().manual_seed(0))
    loss[:100] = float("nan")  # never visited: visited for sure
    for skip in (0.2, 0.4, 0.5, 0.8):
        chance = visit_chances(loss, skip)
        assert torch.all(chance[:100] == 1)
        order = loss[100:].argsort(stable=True)  # (ties: rand repeats a few values)
        assert torch.all(chance[100:][order].diff() > 0)  # a higher loss, a higher chance
        assert chance.mean().item() == pytest.approx(1 - skip, abs=0.01)
    assert torch.all(visit_chances(loss, 0.0) == 1)


def test_each_epoch_draws_its_own_visits_reproducibly():
    skipping = EasySkipping(0.5, seed=3)
    assert skipping.visits(1) is None  # nothing measured yet: every image
    skipping.loss = torch.rand(2_000, generator=torch.Generator().manual_seed(1))
    a, b = skipping.visits(1), skipping.visits(2)
    assert torch.equal(a, skipping.visits(1)) and not torch.equal(a, b)
    for visit in (a, b):
        assert 850 < len(visit) < 1150 and len(visit.unique()) == len(visit)
        easiest, hardest = skipping.loss.argsort()[:500], skipping.loss.argsort()[-500:]
        assert torch.isin(hardest, visit).sum() > 3 * torch.isin(easiest, visit).sum()
    with pytest.raises(ValueError):
        EasySkipping(1.0)


def test_a_loader_goes_over_the_visited_images_only_each_once():
    images = torch.zeros(20, 3, 8, 8, dtype=torch.uint8)
    labels = torch.arange(20)
    visit = torch.tensor([0, 3, 4, 9, 10, 17, 19])
    loader = BatchLoader(images, labels, 3, 8, (0.5,) * 3, (0.5,) * 3, shuffle=True,
                         flip=True, visit=visit)
    seen = torch.cat([idx for idx, _ in loader.indices()])
    assert loader.count == 7 and len(loader) == 3
    assert sorted(seen.tolist()) == visit.tolist()


class Visits(TrainingCallback):
    """The images each epoch's steps went over, and the loss the loop recorded for each."""

    def __init__(self):
        self.by_epoch: dict[int, list] = {}

    def on_train_batch_end(self, loop, epoch, batch):
        idx, losses = loop.batch_losses
        self.by_epoch.setdefault(epoch, []).append((idx.clone(), losses.clone()))

    def indices(self, epoch) -> list[int]:
        return torch.cat([i for i, _ in self.by_epoch[epoch]]).tolist()


SKIPPING = dict(epochs=3, freeze_epochs=0, skip_easy=0.5, seed=2, precision="32")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("skip") / "pets")


def let_tiny_folders_skip(mp) -> None:
    """The tests' folders are tiny; runs on fewer than MIN_IMAGES images do not skip."""
    mp.setattr(sampling, "MIN_IMAGES", 0)


@pytest.fixture(scope="module")
def straight(folder, tmp_path_factory):
    """A 3-epoch run that skips, and what each of its epochs visited."""
    visits = Visits()
    trainer = Trainer(tiny_config(folder, **SKIPPING), [visits],
                      run_dir=tmp_path_factory.mktemp("straight") / "run")
    with pytest.MonkeyPatch.context() as mp:
        let_tiny_folders_skip(mp)
        return trainer, trainer.fit(), visits


def test_a_run_skips_easy_images_after_its_first_epoch(straight):
    trainer, result, visits = straight
    n = len(trainer.data.train.labels)
    assert sorted(visits.indices(0)) == list(range(n))  # the first epoch: every image once
    for epoch in (1, 2):
        later = visits.indices(epoch)
        assert len(set(later)) == len(later) < n
    # the image with the highest loss in the first epoch is sure to come back in the second
    idx, losses = (torch.cat(x) for x in zip(*visits.by_epoch[0]))
    assert int(idx[losses.argmax()]) in visits.indices(1)
    # the images/s an epoch reports count the images it visited
    row = result.history[1]
    assert row["images_per_s"] * row["seconds"] < n


def test_a_resumed_run_visits_the_images_the_whole_run_would_have(folder, straight, tmp_path,
                                                                  monkeypatch):
    let_tiny_folders_skip(monkeypatch)
    Trainer(tiny_config(folder, **{**SKIPPING, "epochs": 2}), run_dir=tmp_path / "b").fit()
    resumed = Visits()
    Trainer(tiny_config(folder, **SKIPPING), [resumed], run_dir=tmp_path / "b",
            resume=True).fit()
    assert list(resumed.by_epoch) == [2]
    assert resumed.indices(2) == straight[2].indices(2)


def test_a_small_folder_visits_every_image_every_epoch(folder, tmp_path):
    visits, events = Visits(), EventCollector()
    trainer = Trainer(tiny_config(folder, **SKIPPING), [visits, events], run_dir=tmp_path)
    trainer.fit()
    n = len(trainer.data.train.labels)
    assert all(sorted(visits.indices(e)) == list(range(n)) for e in range(3))
    log = [e.message for e in events.of(LogLine)]
    assert f"Every epoch visits all {n} training images" in "\n".join(log)
