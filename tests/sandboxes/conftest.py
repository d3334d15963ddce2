from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.dataplane import require_data_plane
from volumes.nodes import driver_of


@pytest.fixture
def data_plane(regions: list[Any]) -> Iterator[None]:
    """The real data plane; every sandbox a test started is stopped on its node afterwards."""
    require_data_plane()
    yield
    for node in regions:
        driver = driver_of(node)
        for sandbox_id in driver.inventory().sandboxes:
            driver.sandbox_stop(sandbox_id)
