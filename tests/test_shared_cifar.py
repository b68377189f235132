"""Training on the real CIFAR-10 images from ../shared (skipped when that copy is absent)."""
import pytest

from core.config import TrainConfig
from core.training.trainer import Trainer

pytestmark = pytest.mark.slow  # real CIFAR-10 from ../shared: `make test-slow` (CI runs it too)

CIFAR10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]


def test_a_few_hundred_cifar_images_train_from_imagenet_weights(shared_cifar, tmp_path):
    cfg = TrainConfig(model="efficientnet_lite0", weights="imagenet", data=str(shared_cifar),
                      epochs=2, freeze_epochs=2, image_size=64, batch_size=32, limit=600,
                      lr=3e-3, flip=True)
    trainer = Trainer(cfg, run_dir=tmp_path / "run")
    result = trainer.fit()
    assert trainer.data.classes == CIFAR10
    assert len(trainer.data.val.labels) == 5000  # a seeded 10% held out of the 50,000
    assert trainer.data.train.images.shape[1:] == (3, 32, 32)  # decoded once at native size
    # 600 images, frozen ImageNet features, 64 px: far above chance (10%)
    assert result.best_val_acc > 45.0, result.history
