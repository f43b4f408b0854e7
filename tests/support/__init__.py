"""What the tests share: one fake clock, the store builders, and the process helpers.

* :mod:`support.clock`: :class:`~support.clock.FakeClock`, the clock of the
  one-pass tests (``tests/steps``, ``tests/cli``, ``tests/unit``);
* :mod:`support.stores`: stores and rounds built by hand, and looking at them;
* :mod:`support.procs`: starting, watching and reaping the test apps
  (``support/apps``) as real processes, for ``tests/procs``, ``tests/cli``
  and ``tests/cluster``.

pytest puts ``tests`` on ``sys.path`` (``pythonpath`` in pyproject.toml), so a
test says ``from support.stores import make_round``.
"""
