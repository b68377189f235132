import os
import tarfile

import pytest
import torch

from core.data.datasets import load_dataset, stratified_split
from core.data.batches import BatchLoader, to_model_input
from core.errors import TransferLabError
from tests.conftest import make_folder, make_image


def test_folder_is_decoded_split_and_bad_files_are_skipped(image_folder):
    ds = load_dataset(str(image_folder), image_size=224, val_split=0.25, seed=0)
    assert ds.classes == ["class_0", "class_1", "class_2"]
    assert len(ds.train.labels) + len(ds.val.labels) == 36
    assert ds.class_counts(ds.val) == {"class_0": 3, "class_1": 3, "class_2": 3}
    assert ds.train.images.dtype == torch.uint8
    assert ds.train.images.shape[1:] == (3, 40, 40)  # small images stay at their own size
    reasons = {os.path.basename(p): why for p, why in ds.skipped}
    assert reasons["notes.jpg"] == "not an image"
    assert reasons["broken.jpg"].startswith("corrupt image")
    assert "skipped 2 unreadable files" in ds.describe()
    assert "per class (train/val): class_0 9/3, class_1 9/3, class_2 9/3" in ds.describe()


def test_split_is_seeded_and_stratified():
    labels = torch.tensor([0] * 50 + [1] * 30)
    a = stratified_split(labels, 0.1, seed=3)
    b = stratified_split(labels, 0.1, seed=3)
    c = stratified_split(labels, 0.1, seed=4)
    assert torch.equal(a[1], b[1]) and not torch.equal(a[1], c[1])
    assert torch.bincount(labels[a[1]]).tolist() == [5, 3]
    assert set(a[0].tolist()).isdisjoint(a[1].tolist())


def test_train_and_val_folders_are_used_as_given(tmp_path):
    make_folder(tmp_path / "d" / "train", classes=2, per_class=5)
    make_folder(tmp_path / "d" / "val", classes=2, per_class=2)
    ds = load_dataset(str(tmp_path / "d"), image_size=32)
    assert (len(ds.train.labels), len(ds.val.labels)) == (10, 4)
    assert ds.val_source == "val/ folder"
    assert ds.train.images.shape[-1] == 32  # larger than the training size: stored at it


def test_decoded_images_are_cached_and_invalidated(image_folder, isolated_home):
    load_dataset(str(image_folder), 224)
    cached = list((isolated_home / "cache" / "decoded").glob("*.pt"))
    assert len(cached) == 1
    ds = load_dataset(str(image_folder), 224)
    assert len(list((isolated_home / "cache" / "decoded").glob("*.pt"))) == 1
    make_image(image_folder / "class_2" / "new.jpg", (0, 0, 0))
    ds2 = load_dataset(str(image_folder), 224)
    assert len(ds2.train.labels) + len(ds2.val.labels) == 37
    assert len(list((isolated_home / "cache" / "decoded").glob("*.pt"))) == 2


@pytest.mark.parametrize("setup,message", [
    (lambda p: None, "not found"),
    (lambda p: p.mkdir(), "no class folders with images"),
    (lambda p: make_folder(p, classes=1), "only one class"),
])
def test_bad_folders_get_clear_errors(tmp_path, setup, message):
    setup(tmp_path / "data")
    with pytest.raises(TransferLabError, match=message):
        load_dataset(str(tmp_path / "data"), 32)


def test_archives_are_unpacked_once(tmp_path):
    make_folder(tmp_path / "src" / "pics" / "train", classes=2, per_class=4)
    archive = tmp_path / "pics.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(tmp_path / "src" / "pics", arcname="pics")
    ds = load_dataset(str(archive), 32, val_split=0.25)
    assert ds.classes == ["class_0", "class_1"] and len(ds.val.labels) == 2


def test_cifar_without_network_explains(tmp_path):
    with pytest.raises(TransferLabError, match="CIFAR-10 is not downloaded yet"):
        load_dataset("cifar10", 32)


def test_batches_are_resized_flipped_and_normalised():
    images = torch.zeros(5, 3, 8, 8, dtype=torch.uint8)
    images[:, :, :, :4] = 255  # left half white
    x = to_model_input(images[:2], 16, (0.5,) * 3, (0.5,) * 3,
                       flip_mask=torch.tensor([False, True]), channels_last=False)
    assert x.shape == (2, 3, 16, 16)
    assert x[0, 0, 0, 0] == pytest.approx(1.0) and x[0, 0, 0, -1] == pytest.approx(-1.0)
    assert x[1, 0, 0, 0] == pytest.approx(-1.0)  # flipped
    loader = BatchLoader(images, torch.arange(5), 2, 8, (0.5,) * 3, (0.5,) * 3, shuffle=True)
    batches = list(loader)
    assert len(loader) == 2 and [len(y) for _, y in batches] == [3, 2]  # never a 1-image step
    assert sorted(torch.cat([y for _, y in batches]).tolist()) == [0, 1, 2, 3, 4]


def test_training_batches_are_cut_evenly_so_no_step_has_a_tiny_remainder():
    images = torch.zeros(9, 3, 4, 4, dtype=torch.uint8)
    train = BatchLoader(images, torch.arange(9), 4, 4, (0,) * 3, (1,) * 3, shuffle=True)
    assert [len(y) for _, y in train] == [3, 3, 3] and len(train) == 3
    val = BatchLoader(images, torch.arange(9), 4, 4, (0,) * 3, (1,) * 3)
    assert [len(y) for _, y in val] == [4, 4, 1]
    for n in range(2, 80):  # every size: ceil(n / B) batches within one image of each other
        loader = BatchLoader(torch.zeros(n, 3, 4, 4, dtype=torch.uint8), torch.arange(n), 16,
                             4, (0,) * 3, (1,) * 3, shuffle=True)
        sizes = [len(y) for _, y in loader]
        assert sum(sizes) == n and len(sizes) == -(-n // 16) and max(sizes) - min(sizes) <= 1


def _fake_cifar10(tmp_path):
    """A tiny archive in CIFAR-10's own format (pickled batches), with its md5 sums."""
    import hashlib
    import io
    import pickle

    import numpy as np

    rng = np.random.default_rng(0)
    files, sums = {}, {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8),
                 "labels": [0, 1, 2, 3]}
        files[name] = pickle.dumps(batch)
    files["batches.meta"] = pickle.dumps({"label_names": [f"c{i}" for i in range(10)]})
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
            sums[name] = hashlib.md5(payload).hexdigest()
    return archive, sums, hashlib.md5(archive.read_bytes()).hexdigest()


def serve_fake_cifar10(tmp_path, monkeypatch):
    """CIFAR-10 "downloads" the tiny archive from a file:// URL (20 training, 4 test
    images); returns the archive."""
    import torchvision.datasets as tvd

    archive, sums, archive_md5 = _fake_cifar10(tmp_path)
    cls = tvd.CIFAR10
    monkeypatch.setattr(cls, "url", archive.as_uri())
    monkeypatch.setattr(cls, "tgz_md5", archive_md5)
    monkeypatch.setattr(cls, "train_list", [[n, sums[n]] for n in sums if n.startswith("data")])
    monkeypatch.setattr(cls, "test_list", [["test_batch", sums["test_batch"]]])
    monkeypatch.setattr(cls, "meta", dict(cls.meta, md5=sums["batches.meta"]))
    return archive


def test_cifar_downloads_with_progress_then_loads(tmp_path, monkeypatch):
    """The real download path, served from a local file:// URL instead of the internet."""
    from core.progress import TaskState

    archive = serve_fake_cifar10(tmp_path, monkeypatch)
    events = []
    ds = load_dataset("cifar10", 32, state=TaskState(on_progress=events.append))
    assert ds.classes == [f"c{i}" for i in range(10)]
    assert ds.train.images.shape == (20, 3, 32, 32) and len(ds.val.labels) == 4
    assert ds.val_source == "official test split"
    stages = {e.stage for e in events}
    assert "Downloading CIFAR-10" in stages and "Extracting CIFAR-10" in stages
    assert events[0].total == archive.stat().st_size
