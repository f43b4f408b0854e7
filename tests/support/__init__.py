"""What the tests share: one fake clock and the store builders.

* :mod:`support.clock`: :class:`~support.clock.FakeClock`, the clock of the
  one-pass tests (``tests/steps``, ``tests/cli``, ``tests/unit``);
* :mod:`support.stores`: stores and rounds built by hand, and looking at them.

pytest puts ``tests`` on ``sys.path`` (``pythonpath`` in pyproject.toml), so a
test says ``from support.stores import make_round``.
"""
