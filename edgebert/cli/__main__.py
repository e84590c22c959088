"""`python -m edgebert.cli` (what `torchrun ... -m edgebert.cli train` runs)."""

import sys

from . import main

sys.exit(main())
