"""What the wheel carries: the package's data files as real files, under a distribution name of
its own. (``.ci/wheel-check`` builds and installs the wheel and runs the commands from it.)"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import riskmodel
from riskmodel.config import ALIASES_FILE, DEFAULT_CONFIG

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(riskmodel.__file__).parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_package_data_are_real_files_inside_the_package():
    for path in (DEFAULT_CONFIG, ALIASES_FILE, PACKAGE / "py.typed"):
        assert path.is_file(), path
    for path in [PACKAGE / "configs", *PACKAGE.rglob("*")]:
        # A wheel stores a link's target only when it is a file, never a linked folder.
        assert not path.is_symlink(), f"{path} is a link; a wheel would not carry what it names"
    for path in (DEFAULT_CONFIG, ALIASES_FILE):
        assert path.resolve().is_relative_to(PACKAGE.resolve()), path


def test_every_data_file_of_the_package_is_declared_for_the_wheel():
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["riskmodel"]
    data = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*")
            if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts]
    assert data
    missing = [name for name in data if not any(fnmatch.fnmatch(name, p) for p in patterns)]
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"


def test_the_distribution_has_a_name_of_its_own_and_the_readme_installs_it():
    from riskmodel.model._estimator import DISTRIBUTION

    # `riskmodel` on PyPI is an unrelated package: never the name to install.
    name = PYPROJECT["project"]["name"]
    assert name == DISTRIBUTION != "riskmodel"
    assert PYPROJECT["project"]["scripts"] == {"riskmodel": "riskmodel.cli:main"}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert name in readme
    for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"pip install ['\"]?riskmodel\b", text), path
