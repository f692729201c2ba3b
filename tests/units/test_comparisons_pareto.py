"""The front of accuracy against energy per item that /api/models marks: no model on it is dominated."""

from __future__ import annotations

import random

from tsstats.comparisons.models import pareto_front


def test_dominated_models_are_off_the_front_and_ties_stay_on_it():
    points = [(90.0, 2.0), (85.0, 1.0), (80.0, 1.5), (90.0, 3.0), (70.0, 1.0), (90.0, 2.0), (None, 0.1), (99.0, None)]
    # (80, 1.5) is beaten by (85, 1.0); (90, 3.0) by (90, 2.0); (70, 1.0) by (85, 1.0); the equal pair both stay
    assert pareto_front(points) == {0, 1, 5}


def test_the_front_is_exactly_the_undominated_points():
    chooser = random.Random(7)
    for _ in range(200):
        count = chooser.randint(1, 12)
        points = [(float(chooser.randint(50, 60)), float(chooser.randint(1, 10))) for _ in range(count)]
        front = pareto_front(points)
        assert front  # a finite set of points has a front
        for index, (accuracy, energy) in enumerate(points):
            beaten = any(a >= accuracy and e <= energy and (a, e) != (accuracy, energy) for a, e in points)
            assert (index in front) == (not beaten)
