"""Shared pytest fixtures; ci_skips turns a skip for a missing tool into a failure in CI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from calc.client import Calc, unavailable_reason
from ci_skips import pytest_runtest_makereport  # noqa: F401  (a hook: pytest finds it here)

from sheettool.generate import RENDERER_ENV, RENDERERS


@pytest.fixture(scope="session")
def calc() -> Iterator[Calc]:
    """One headless LibreOffice Calc for the whole test session.

    Missing LibreOffice skips the test on a developer's machine; in CI the skip fails
    (ci_skips), where it would hide that nothing was checked.
    """
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"LibreOffice Calc harness unavailable: {reason}")
    harness = Calc()
    harness.start()
    yield harness
    harness.close()


@pytest.fixture(scope="module", params=sorted(RENDERERS))
def renderer(request) -> Iterator[str]:
    """Runs a module's tests once per renderer ``generate`` can use (see ``pytestmark`` there)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(RENDERER_ENV, request.param)
        yield request.param
