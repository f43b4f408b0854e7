"""Install fsmw: ``pip install .`` (add ``[test]`` for the test tools)."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent


def version() -> str:
    """``__version__`` of fsmw/__init__.py, read without importing fsmw."""
    text = (HERE / "fsmw" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"$', text, re.M)
    if found is None:
        raise RuntimeError("no __version__ line in fsmw/__init__.py")
    return found.group(1)


setup(
    name="fsmw",
    version=version(),
    description="A master-worker task farm over a shared file system (NFS, Lustre, GPFS)",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["fsmw", "fsmw.*"]),
    package_data={"fsmw": ["py.typed"]},
    python_requires=">=3.9",
    entry_points={"console_scripts": ["fsmw = fsmw.cli:main"]},
    # python-gflags imports six but does not declare it.
    install_requires=["python-gflags>=3.1", "six>=1.10"],
    extras_require={"test": [
        "pytest>=7",
        "libfaketime==3.0.1",  # its vendored build: Debian's breaks time.sleep on 3.11+
        "htcondor==24.12.24",  # validates condor_submit.txt without daemons (25.x cannot)
    ]},
    license="Apache-2.0",
    license_files=["LICENSE"],
    classifiers=[
        "Programming Language :: Python :: 3",
        "Operating System :: POSIX",
        "Topic :: System :: Distributed Computing",
    ],
)
