"""``python -m fsmw``: the same as the ``fsmw`` command."""

import sys

from .cli import main

sys.exit(main())
