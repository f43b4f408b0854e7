"""Install fsmw: ``pip install .`` (add ``[test]`` for the test tools)."""

from setuptools import setup

setup(
    name="fsmw",
    version="0.1.0",
    description="A master-worker task farm over a shared file system (NFS, Lustre, GPFS)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=["fsmw"],
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
    classifiers=[
        "Programming Language :: Python :: 3",
        "Operating System :: POSIX",
        "Topic :: System :: Distributed Computing",
    ],
)
