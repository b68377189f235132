"""How the check's network runs (core.doctor.speed): timed once per CPU kind, then the same
answer every time; float32 where the CPU has no bf16 units or there is little to compute."""
from __future__ import annotations

import torch

from core.doctor import speed
from core.doctor.features import Backbone
from core.training import autotune as at

KEY = speed.workload_key("tiny", 32, 8, 1)


class Counted:
    """A real forward pass of a small network, counting its calls per precision."""

    def __init__(self):
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1),
                                       torch.nn.Flatten())
        self.calls = {False: 0, True: 0}

    def __call__(self, x, bf16):
        self.calls[bf16] += 1
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            return self.net(x.float())


def test_without_bf16_units_float32_and_nothing_is_timed(monkeypatch):
    monkeypatch.setattr(speed, "cpu_bf16_units", lambda: "")
    fwd = Counted()
    d = speed.choose_precision(fwd, torch.zeros(8, 3, 32, 32, dtype=torch.uint8), KEY, 10**6)
    assert d["choice"] == "32" and "no bf16 units" in d["reason"]
    assert fwd.calls == {False: 0, True: 0} and at.recall(KEY) is None


def test_few_images_keep_float32_untimed(monkeypatch):
    monkeypatch.setattr(speed, "cpu_bf16_units", lambda: "amx_bf16")
    fwd = Counted()
    d = speed.choose_precision(fwd, torch.zeros(8, 3, 32, 32, dtype=torch.uint8), KEY,
                               speed.MIN_IMAGES - 1)
    assert d["choice"] == "32" and "not worth timing" in d["reason"]
    assert sum(fwd.calls.values()) == 0 and at.recall(KEY) is None


def test_timed_once_then_the_same_answer_from_the_cache(monkeypatch):
    monkeypatch.setattr(speed, "cpu_bf16_units", lambda: "amx_bf16")
    x = torch.randint(0, 255, (8, 3, 32, 32), dtype=torch.uint8)
    first = Counted()
    d = speed.choose_precision(first, x, KEY, 10**6)
    assert first.calls[False] >= at.FIRST_ROUNDS and first.calls[True] >= at.FIRST_ROUNDS
    assert d["choice"] in ("32", "bf16") and set(d["figures"]) == {"32", "bf16"}
    assert d["source"] == "timed now on this CPU"
    for _ in range(3):  # every later check on this machine: no timing, one answer
        again = Counted()
        d2 = speed.choose_precision(again, x, KEY, 10**6)
        assert d2["choice"] == d["choice"] and d2["source"] == "cached for this machine"
        assert sum(again.calls.values()) == 0


def test_backbone_forward_in_bf16_is_close_to_float32_and_mirror_averages():
    from core.models import build_model

    model, pre, _ = build_model("mobilenet_v2", "none", 3)
    net = Backbone("mobilenet_v2", model.eval(), pre, "test")
    x = torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8)
    f32, p32 = net.forward(x)
    fbf, pbf = net.forward(x, bf16=True)
    assert f32.dtype == fbf.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(f32, fbf).min() > 0.98
    net.fine_tuned = True
    fm, _ = net.forward(x)
    flipped, _ = Backbone("mobilenet_v2", model, pre, "test").forward(x.flip(-1))
    assert torch.allclose(fm, (f32 + flipped) / 2, atol=1e-5)
