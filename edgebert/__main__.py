"""`python -m edgebert` runs the `edgebert` command."""

import sys

from .cli import main

sys.exit(main())
