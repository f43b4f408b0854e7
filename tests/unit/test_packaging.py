"""The installed package: ``fsmw --version``, its metadata, the LICENSE and what a wheel ships.

Run by ``make test``, where fsmw is installed (editable) into the test venv, so
the console script sits next to ``sys.executable`` and importlib.metadata
finds the distribution.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Dict
from unittest import mock

import pytest

import fsmw

ROOT = Path(__file__).resolve().parents[2]


def run(argv) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)


def console_script() -> Path:
    script = Path(sys.executable).parent / "fsmw"
    assert script.exists(), f"no console script {script}: is fsmw installed (pip install -e .)?"
    return script


@pytest.mark.parametrize("how", ["console script", "python -m fsmw"])
def test_version_prints_the_package_version(how):
    argv = [str(console_script())] if how == "console script" else [sys.executable, "-m", "fsmw"]
    done = run(argv + ["--version"])
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"fsmw {fsmw.__version__}\n"
    assert done.stderr == ""


def test_installed_metadata_matches_the_package():
    meta = metadata.metadata("fsmw")
    assert metadata.version("fsmw") == fsmw.__version__
    assert meta["Name"] == "fsmw"
    assert meta["License"] == "Apache-2.0"
    assert "LICENSE" in [Path(f).name for f in meta.get_all("License-File") or []]
    assert [e.value for e in metadata.entry_points(group="console_scripts") if e.name == "fsmw"] \
        == ["fsmw.cli:main"]


def test_license_is_the_apache_license_2_0():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    for part in ("TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
                 "9. Accepting Warranty or Additional Liability.",
                 "END OF TERMS AND CONDITIONS",
                 "APPENDIX: How to apply the Apache License to your work."):
        assert part in text
    debian = Path("/usr/share/common-licenses/Apache-2.0")
    if debian.exists():  # the canonical text, where the system ships it
        assert text == debian.read_text(encoding="utf-8")


def setup_arguments() -> Dict[str, Any]:
    """What setup.py passes to setuptools.setup (setup.py run, setup() not)."""
    setuptools = pytest.importorskip("setuptools")
    seen: Dict[str, Any] = {}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with mock.patch.object(setuptools, "setup", lambda **kw: seen.update(kw)):
            runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    finally:
        os.chdir(cwd)
    return seen


def test_setup_ships_every_subpackage_and_reads_the_one_version():
    args = setup_arguments()
    assert args["version"] == fsmw.__version__
    on_disk = sorted(".".join(p.parent.relative_to(ROOT).parts)
                     for p in (ROOT / "fsmw").rglob("__init__.py"))
    assert sorted(args["packages"]) == on_disk
    assert args["license"] == "Apache-2.0" and args["license_files"] == ["LICENSE"]
    assert "project_urls" not in args and "url" not in args  # nothing is hosted
