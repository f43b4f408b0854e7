"""The side-by-side benchmark (bench/README.md): ``python -m bench.run`` from the
repository root, as ``make bench`` does.  bench/systems/ holds one script per
system, each run by path as a separate process."""
