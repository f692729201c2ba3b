"""The states a comparison may move between."""

from __future__ import annotations

import pytest

from tsstats.comparisons.validation import check_transition
from tsstats.core.inputs import InputError


@pytest.mark.parametrize("current, wanted, ok", [
    ("queued", "running", True), ("queued", "cancelled", True), ("running", "completed", True),
    ("running", "failed", True), ("running", "cancelled", True), ("queued", "completed", False),
    ("running", "queued", False), ("running", "running", False), ("completed", "running", False),
    ("cancelled", "running", False), ("failed", "completed", False),
])
def test_transitions(current, wanted, ok):
    if ok:
        check_transition(current, wanted)
    else:
        with pytest.raises(InputError) as raised:
            check_transition(current, wanted)
        assert raised.value.status == 409
