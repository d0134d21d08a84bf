"""A regular install: the wheel carries the templates and schemas, and the console script works."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT, SEED_RECORDS

pytestmark = pytest.mark.packaging

# What a build must not see: the copy is made the way a fresh clone looks.
_NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "build", "dist", "out", "*.egg-info",
                                      "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis")


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist, and the wheel built from it, of a copy of the source tree.

    A copy: builds write build/ and *.egg-info next to the sources. The wheel comes from the
    sdist (python -m build), so both are checked: what a sdist leaves out, its wheel lacks.
    """
    base = tmp_path_factory.mktemp("dist")
    source = base / "src"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCES)
    (source / ".venv" / "lib").mkdir(parents=True)  # as a developer's checkout has one
    (source / ".venv" / "lib" / "stray.py").write_text("", encoding="utf-8")
    built = _run([sys.executable, "-m", "build", "--outdir", str(base / "dist"), str(source)],
                 cwd=base)
    assert built.returncode == 0, built.stdout + built.stderr
    return base / "dist"


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    (found,) = dist.glob("sheettool-*.whl")
    return found


def _bundled_files(folder: str) -> list[str]:
    files = [p.relative_to(ROOT / folder).as_posix() for p in (ROOT / folder).rglob("*") if p.is_file()]
    assert files
    return files


def test_wheel_carries_every_template_and_schema_file_and_no_tests(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, package in (("templates", "_templates"), ("schemas", "_schemas")):
        for name in _bundled_files(folder):
            assert f"sheettool/{package}/{name}" in names
    assert not [n for n in names if n.startswith(("tests/", ".venv/", "scripts/", "data/"))
                or "/tests/" in n or ".venv" in n]


def test_sdist_has_the_sources_and_data_but_no_tests_or_venv(dist: Path) -> None:
    (sdist,) = dist.glob("sheettool-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for folder in ("templates", "schemas"):
        for name in _bundled_files(folder):
            assert f"{folder}/{name}" in names  # at the paths the contract names
    assert {"pyproject.toml", "README.md", "sheettool/cli.py"} <= names
    assert not [n for n in names if n.startswith(("tests", ".venv")) or "__pycache__" in n]


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only the wheel; the runtime dependencies come from this environment."""
    venv = tmp_path_factory.mktemp("venv") / "v"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=venv.parent)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    # A path in a .pth is put on sys.path, but .pth files there are not run: this environment's
    # editable sheettool (an import hook started by its own .pth) stays out of the new venv.
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                   cwd=venv).stdout.strip()
    deps = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib"), *site.getsitepackages()}
    Path(purelib, "_sheettool_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n",
                                                        encoding="utf-8")
    done = _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                 "--no-deps", "--no-index", str(wheel)], cwd=venv.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    return venv


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SHEETTOOL_HOME")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def test_installed_wheel_reads_its_own_data(installed: Path, tmp_path: Path) -> None:
    probe = ("import sheettool, sheettool.resources as r; "
             "print(sheettool.__file__); print(r.templates_dir()); print(r.schemas_dir())")
    done = _run([str(installed / "bin" / "python"), "-c", probe], cwd=tmp_path, env=_clean_env())
    assert done.returncode == 0, done.stderr
    module, templates, schemas = (Path(line) for line in done.stdout.splitlines())
    for path in (module, templates, schemas):
        assert path.resolve().is_relative_to(installed.resolve()), path
    assert (templates / "tsukuba" / "layout.json").is_file()
    assert (schemas / "record.schema.json").is_file()


def test_installed_console_script_generates_and_checks(installed: Path, tmp_path: Path) -> None:
    work = tmp_path / "事務局"
    work.mkdir()
    shutil.copy(SEED_RECORDS, work / SEED_RECORDS.name)
    sheettool = str(installed / "bin" / "sheettool")
    env = _clean_env()

    made = _run([sheettool, "generate", SEED_RECORDS.name, "--out", "配布"], cwd=work, env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "6件のテンプレートを作成しました" in made.stdout
    books = sorted((work / "配布").rglob("*.xlsx"))
    assert len(books) == 6

    checked = _run([sheettool, "check", str(books[0].relative_to(work))], cwd=work, env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "結果: 受理できます" in checked.stdout
    assert "Traceback" not in checked.stderr
