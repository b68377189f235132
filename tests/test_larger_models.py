"""EfficientNet-Lite1 and Lite2: offline ImageNet weights, the stage split that caching needs,
and the catalog's input sizes (what fitting sizes photos from) against the weights' own."""
from pathlib import Path

import pytest
import torch

from core.catalog import MODELS


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_the_larger_lite_networks_load_their_offline_weights_and_split_into_stages(name):
    from core.models.registry import build_model
    from core.models.staging import run, stages

    model, pre, info = build_model(name, "imagenet", None)
    assert info.kind == "imagenet" and Path(info.source).exists() and name[-5:] in info.source
    raw = torch.load(info.source, weights_only=True)
    assert torch.equal(model.conv_stem.weight, next(iter(raw.values())))
    assert torch.equal(model.classifier.bias, list(raw.values())[-1])
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(run(stages(name, model), x), model(x), atol=1e-5)


@pytest.mark.parametrize("entry", MODELS, ids=lambda m: m.name)
def test_the_catalogs_input_size_is_the_weights_own(entry):
    from core.models.registry import imagenet_preprocessing

    assert entry.input_size == imagenet_preprocessing(entry).image_size
