"""``python -m berth``: the same as the ``berth`` command."""

from __future__ import annotations

import sys

from berth.cli import main

sys.exit(main())
