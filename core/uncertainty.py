"""How far an accuracy measured on N images can be from the accuracy on all images like them.

With 24 validation images one image is 4.2 points, and a run that scores 93.8% could as well be
an 85% or a 99% model. The Wilson score interval (95%) says how far: unlike the textbook
p +- 1.96 sqrt(p(1-p)/n) it stays inside 0-100% and does not shrink to nothing at 0 or N
right. No torch import: the GUI and the CLI print it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959964  # the normal quantile of a two-sided 95% interval


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The interval (low, high), as fractions, of a share ``correct / n``."""
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    spread = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = max(0.0, centre - spread), min(1.0, centre + spread)
    # exact at the ends (rounding would put 10 of 10 right just below its own interval)
    return (0.0 if correct == 0 else low), (1.0 if correct == n else high)


@dataclass(frozen=True)
class AccuracyInterval:
    correct: int
    n: int

    @classmethod
    def from_percent(cls, percent: float, n: int) -> "AccuracyInterval":
        """From an accuracy in percent over ``n`` images (every such figure is a count)."""
        return cls(round(percent * n / 100), n)

    @property
    def percent(self) -> float:
        return 100.0 * self.correct / self.n if self.n else 0.0

    @property
    def low(self) -> float:
        return 100.0 * wilson(self.correct, self.n)[0]

    @property
    def high(self) -> float:
        return 100.0 * wilson(self.correct, self.n)[1]

    @property
    def plus_minus(self) -> float:
        """Half the interval's width, in points (the interval itself is not symmetric)."""
        return (self.high - self.low) / 2

    def describe(self) -> str:
        """'93.8% ± 7.3' (45 of 48 right)."""
        return f"{self.percent:.1f}% ± {self.plus_minus:.1f}"

    def describe_long(self) -> str:
        """'93.8% ± 7.3 (95% interval 83.2–97.9% on 48 images)'."""
        return (f"{self.describe()} (95% interval {self.low:.1f}–{self.high:.1f}% on "
                f"{self.n} images)")


def accuracy_interval(accuracy: float, n: int) -> tuple[float, float]:
    """The 95% interval (low, high), in percent, of an ``accuracy`` (percent) measured on
    ``n`` images."""
    interval = AccuracyInterval.from_percent(accuracy, n)
    return (interval.low, interval.high) if n > 0 else (0.0, 100.0)


def format_accuracy(accuracy: float, n: int) -> str:
    """``93.75% ± 10.8``: the figure and its 95% uncertainty on ``n`` images."""
    return f"{accuracy:.2f}% ± {AccuracyInterval.from_percent(accuracy, n).plus_minus:.1f}"
