"""A release's creation time follows SOURCE_DATE_EPOCH when set, so one run released twice is one release."""

from __future__ import annotations

import pytest

from release.publish import ReleaseError, created_time


def test_source_date_epoch_names_the_creation_time(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert created_time() == "2023-11-14T22:13:20Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "not a number")
    with pytest.raises(ReleaseError, match="SOURCE_DATE_EPOCH"):
        created_time()
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert created_time()[:2] == "20"
