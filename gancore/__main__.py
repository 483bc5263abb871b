"""``python -m gancore`` is the ``gan`` command."""

import sys

from gancore._cli import main

sys.exit(main())
