"""Shared pytest fixtures; ci_skips turns a skip for a missing tool into a failure in CI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from calc.client import Calc, unavailable_reason
from ci_skips import pytest_runtest_makereport  # noqa: F401  (a hook: pytest finds it here)

from sheettool.generate import RENDERER_ENV, RENDERERS
from sheettool.signing import KEY_ENV


@pytest.fixture(scope="session", autouse=True)
def office_key(tmp_path_factory) -> Iterator[Path]:
    """The evaluation office's signing key for the whole session, never the user's own.

    ``generate`` creates it on first use (and its issue register next to it); ``check`` and
    ``collect`` verify with it. Subprocesses inherit the variable.
    """
    path = tmp_path_factory.mktemp("office") / "key"
    saved = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = str(path)
    yield path
    if saved is None:
        os.environ.pop(KEY_ENV, None)
    else:
        os.environ[KEY_ENV] = saved


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
