import hashlib
from pathlib import Path

import pytest
import torch

from core.download import download
from core.errors import TransferLabError
from core.models import MODEL_NAMES, build_model, head_path
from core.models.weights import hub_file, _tv_weights, map_by_position


@pytest.mark.parametrize("name,head", [("mobilenet_v2", "classifier.1"), ("resnet18", "fc"),
                                       ("resnet50", "fc"), ("efficientnet_lite0", "classifier")])
def test_head_is_replaced_for_n_classes(name, head):
    model, pre, info = build_model(name, "none", 7)
    assert head_path(model) == head
    assert model.get_submodule(head).out_features == 7
    model.eval()
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 7)
    assert info.kind == "none"


def test_registry_and_unknown_model():
    assert {"mobilenet_v2", "resnet18", "resnet50", "efficientnet_lite0"} <= set(MODEL_NAMES)
    with pytest.raises(TransferLabError, match="Unknown model 'vgg99'"):
        build_model("vgg99", "none", 3)


def test_preprocessing_comes_from_the_weights_metadata():
    _, pre, _ = build_model("mobilenet_v2", "none", 3)
    assert (pre.image_size, pre.resize_size) == (224, 256)
    assert pre.mean == pytest.approx((0.485, 0.456, 0.406))
    _, pre, _ = build_model("efficientnet_lite0", "none", 3)
    assert pre.mean == pytest.approx((0.5, 0.5, 0.5)) and pre.image_size == 224


def test_imagenet_weights_load_from_the_torch_hub_cache():
    """Seed the hub cache with a file we make (never the network) and check it is used."""
    source, _, _ = build_model("mobilenet_v2", "none", None)
    path = hub_file(_tv_weights("mobilenet_v2").url)
    path.parent.mkdir(parents=True)
    torch.save(source.state_dict(), path)
    model, _, info = build_model("mobilenet_v2", "imagenet", 5)
    assert info.kind == "imagenet" and info.source == str(path)
    assert torch.equal(model.features[0][0].weight, source.features[0][0].weight)
    assert model.classifier[1].out_features == 5


def test_missing_imagenet_weights_never_fall_back_to_random():
    with pytest.raises(TransferLabError) as err:
        build_model("resnet18", "imagenet", 5)
    message = str(err.value)
    assert "resnet18" in message and "resnet18-f37072fd.pth" in message
    assert "--weights FILE" in message


def test_efficientnet_lite0_weights_ship_offline_and_map_by_position():
    model, _, info = build_model("efficientnet_lite0", "imagenet", None)
    assert info.kind == "imagenet" and Path(info.source).exists()
    raw = torch.load(info.source, weights_only=True)
    first_raw = next(iter(raw.values()))
    assert torch.equal(model.conv_stem.weight, first_raw)
    broken = dict(raw)
    key = list(broken)[5]
    broken[key] = torch.zeros(1, 2, 3)
    with pytest.raises(TransferLabError, match="does not fit"):
        map_by_position(model, broken)


def test_weights_file_of_another_architecture_is_refused(tmp_path):
    resnet, _, _ = build_model("resnet18", "none", None)
    f = tmp_path / "resnet18.pth"
    torch.save(resnet.state_dict(), f)
    with pytest.raises(TransferLabError, match="does not fit mobilenet_v2"):
        build_model("mobilenet_v2", str(f), 3)
    model, _, info = build_model("resnet18", str(f), 3)  # same architecture: head left out
    assert torch.equal(model.conv1.weight, resnet.conv1.weight) and info.kind == "file"


def test_unreadable_weights_file(tmp_path):
    f = tmp_path / "junk.pth"
    f.write_text("not a checkpoint")
    with pytest.raises(TransferLabError, match="not a readable PyTorch weights file"):
        build_model("resnet18", str(f), 3)
    with pytest.raises(TransferLabError, match="neither 'imagenet', 'none' nor an existing"):
        build_model("resnet18", str(tmp_path / "missing.pth"), 3)


def test_download_reports_progress_and_checks_hashes(tmp_path):
    src = tmp_path / "payload.bin"
    src.write_bytes(b"x" * 200_000)
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    seen = []
    dest = download(src.as_uri(), tmp_path / "out" / "p.bin", lambda d, t: seen.append((d, t)),
                    sha256_prefix=sha[:8])
    assert dest.read_bytes() == src.read_bytes()
    assert seen[-1] == (200_000, 200_000) and len(seen) > 1
    with pytest.raises(TransferLabError, match="corrupt"):
        download(src.as_uri(), tmp_path / "bad.bin", sha256_prefix="deadbeef")
    assert not (tmp_path / "bad.bin").exists()
    with pytest.raises(OSError, match="offline"):
        download("https://example.invalid/x", tmp_path / "y")


def test_imagenet_efficientnet_recognises_a_real_cat_photo(tmp_path):
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    from core.inference.predict import load_imagenet_model, predict_paths

    photo = tmp_path / "chelsea.jpg"
    Image.fromarray(skimage_data.chelsea()).save(photo)
    lm = load_imagenet_model("efficientnet_lite0")
    [result] = predict_paths(lm, [photo], topk=5)
    top = [c for c, _ in result.topk]
    assert top[0] in {"tabby", "tiger cat", "Egyptian cat"}, result.topk
    probs = [p for _, p in result.topk]
    assert probs == sorted(probs, reverse=True)
    [every] = predict_paths(lm, [photo], topk=1000)  # the whole distribution sums to 1
    assert sum(p for _, p in every.topk) == pytest.approx(1, abs=1e-4)
    assert [c for c, _ in every.topk[:5]] == top


def test_drop_path_skips_blocks_only_while_training_and_adds_no_weights():
    torch.manual_seed(0)
    plain, _, _ = build_model("efficientnet_lite0", "none", 3)
    dropped, _, _ = build_model("efficientnet_lite0", "none", 3, drop_path=0.3)
    assert set(plain.state_dict()) == set(dropped.state_dict())
    dropped.load_state_dict(plain.state_dict())  # model.pt of either loads into the other
    x = torch.randn(4, 3, 64, 64)
    plain.eval(), dropped.eval()
    with torch.no_grad():
        assert torch.equal(plain(x), dropped(x))
        dropped.train()
        plain.train()
        torch.manual_seed(1)
        a = dropped(x)
        torch.manual_seed(2)
        assert not torch.allclose(a, dropped(x))  # blocks were skipped at random
        torch.manual_seed(1)
        p1 = plain(x)
        torch.manual_seed(2)
        assert torch.allclose(p1, plain(x))  # without it, training mode is deterministic


def test_drop_path_on_a_torchvision_network_is_refused_with_what_to_do():
    with pytest.raises(TransferLabError, match="drop_path needs a timm network"):
        build_model("mobilenet_v2", "none", 3, drop_path=0.1)


def test_a_config_with_drop_path_on_a_torchvision_network_is_refused_before_training():
    from core.config import TrainConfig

    TrainConfig(model="efficientnet_lite1", drop_path=0.1).validate()
    with pytest.raises(TransferLabError, match="--drop-path works with efficientnet_lite0"):
        TrainConfig(model="resnet18", drop_path=0.1).validate()
