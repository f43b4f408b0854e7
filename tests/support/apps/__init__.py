"""The test apps: programs that :class:`support.procs.Procs` runs by path as real processes.

``master.py`` and ``worker.py`` are an fsmw master and worker configured by a
JSON file; ``reader.py`` checks every input and output as it appears;
``blob.py`` is the checksummed file format they share (the apps import it as
``blob``: their directory is the script's); ``browser.py`` drives headless
Chromium for the report test.
"""
