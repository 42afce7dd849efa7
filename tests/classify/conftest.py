from __future__ import annotations

from pathlib import Path

import pytest
from vigil_classify.engine import Classifier

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    return Classifier()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES
