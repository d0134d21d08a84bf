"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from calc.client import Calc, unavailable_reason

from sheettool.generate import RENDERER_ENV, RENDERERS


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def calc() -> Iterator[Calc]:
    """One headless LibreOffice Calc for the whole test session.

    Missing LibreOffice skips the test on a developer's machine but fails it in CI,
    where a silent skip would hide that nothing was checked.
    """
    reason = unavailable_reason()
    if reason is not None:
        if _in_ci():
            pytest.fail(f"LibreOffice Calc harness required in CI: {reason}")
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
