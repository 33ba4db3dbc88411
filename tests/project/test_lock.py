"""Installs are reproducible: `./dev`, CI and the Docker image install exact versions, checked
against their hashes, from the lock files in requirements/ (written by `./dev lock`)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^ ;\\]+)")


def pins(path: str) -> dict[str, str]:
    """name -> version of every requirement in a lock file, checking each carries a hash."""
    found: dict[str, str] = {}
    text = (ROOT / path).read_text()
    # A requirement is its first line and the continuation lines after it.
    for block in re.split(r"\n(?=[^\s#])", text):
        if not (match := PIN.match(block)):
            continue
        assert "--hash=sha256:" in block, f"{path}: {match.group(1)} has no hash"
        name = canonicalize_name(match.group(1).split("[")[0])
        found[name] = match.group(2)
    return found


def declared(*extras: str) -> set[str]:
    project = PYPROJECT["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def test_the_image_lock_pins_every_runtime_dependency_with_a_hash():
    main = pins("requirements/main.txt")
    assert declared() <= set(main), declared() - set(main)
    assert "setuptools" in main, "the build backend is pinned too (installs use no isolation)"


def test_the_development_lock_pins_the_tools_at_the_image_versions():
    main = pins("requirements/main.txt")
    dev = pins("requirements/dev.txt")
    assert declared("dev", "bench") <= set(dev), declared("dev", "bench") - set(dev)
    differ = {name: (main[name], dev[name]) for name in main if dev.get(name) != main[name]}
    assert not differ, f"requirements/dev.txt must keep the image's versions: {differ}"


def test_dev_the_dockerfile_and_ci_install_from_the_locks():
    dev = (ROOT / "dev").read_text()
    assert "--require-hashes --no-deps -r requirements/dev.txt" in dev
    assert "requirements/dev.txt" in dev.split("stamp=", 1)[1].splitlines()[0], (
        "a changed lock must reinstall"
    )
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps -r requirements/main.txt" in dockerfile
    assert re.search(r"pip install --no-deps --no-build-isolation \.", dockerfile)
    assert "./dev test" in (ROOT / ".ci" / "run").read_text()
