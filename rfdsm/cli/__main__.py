"""``python -m rfdsm.cli``: the ``rfdsm`` command."""

import sys

from . import main

sys.exit(main())
