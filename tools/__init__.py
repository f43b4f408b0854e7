"""The project's own tools (not part of the fsmw package, not installed).

Run from the repository root, as modules: ``python -m tools.soak``,
``python -m tools.demo_report``; pytest finds them through pyproject.toml.

- :mod:`tools.lab`: the GlusterFS / Slurm / HTCondor lab of the cluster tier,
  the soak and the benchmark;
- :mod:`tools.soak`: randomized runs with SIGKILLs (``make soak``);
- :mod:`tools.demo_report`: the demo run behind docs/report.png.
"""
