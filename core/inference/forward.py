"""The one forward path of a trained (or plain ImageNet) network, for every front end.

``InferenceNet`` takes the normalised centre square of core.preprocess (``crop_size``) and
gives the logits and the penultimate features: it resizes the square to the network's input
size itself (``InputResize``, the resize training used: core.data.batches.resize_square),
averages the image and its mirror image when the run validated that way, and scores how
unlike the training images a photo is (core.inference.ood) from the features it computes
anyway. ``predict`` and the Inference tab (core.inference.predict), ``evaluate``, export
(whose ONNX and pt2 graphs are this module with a softmax on top) and the training run's
calibration all call it, so they cannot drift apart.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from core.data.batches import resize_square
from core.models.flip_average import flip_average
from core.preprocess import Preprocessing


class InputResize(nn.Module):
    """The square resized to the network's input side (a no-op when it has that size)."""

    def __init__(self, size: int, interpolation: str):
        super().__init__()
        self.size, self.interpolation = size, interpolation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return resize_square(x, self.size, self.interpolation)


def split_head(model: nn.Module, path: str) -> tuple[nn.Module, nn.Module]:
    """(body, head): ``body`` is ``model`` with the head at ``path`` replaced by an identity,
    sharing every other module and tensor with it (shallow copies down the head's path), so
    ``head(body(x)) == model(x)`` and the body's output is the penultimate features."""
    body = copy.copy(model)
    body._modules = dict(model._modules)
    parent, *names = body, *path.split(".")
    for name in names[:-1]:
        child = copy.copy(parent._modules[name])
        child._modules = dict(child._modules)
        parent._modules[name] = child
        parent = child
    head = parent._modules[names[-1]]
    parent._modules[names[-1]] = nn.Identity()
    return body, head


class InferenceNet(nn.Module):
    """normalised (N, 3, crop_size, crop_size) -> (logits, penultimate features)."""

    def __init__(self, model: nn.Module, head_path: str, pre: Preprocessing,
                 flip_average: bool = False, ood: nn.Module | None = None):
        super().__init__()
        self.resize = InputResize(pre.image_size, pre.interpolation)
        self.body, self.head = split_head(model, head_path)
        self.mirror = flip_average
        self.ood = ood  # core.inference.ood.Unfamiliarity, from the run's calibration
        self.eval()

    def network_input(self, x: torch.Tensor) -> torch.Tensor:
        return self.resize(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.resize(x)
        feats = self.body(x)
        logits = self.head(feats)
        if self.mirror:  # the image and its mirror image, as the run validated
            mirrored = self.body(x.flip(-1))
            logits = flip_average(logits, self.head(mirrored))
            feats = (feats.float() + mirrored.float()) / 2
        return logits.float(), feats.float()


class Probabilities(nn.Module):
    """What exported files compute: softmax probabilities, and the out-of-distribution score
    as a second output when the model has one."""

    def __init__(self, net: InferenceNet):
        super().__init__()
        self.net = net
        self.eval()

    def forward(self, input):  # noqa: A002 - the argument name becomes the graph input's
        logits, feats = self.net(input)
        probs = logits.softmax(1)
        if self.net.ood is None:
            return probs
        return probs, self.net.ood(feats)
