"""`python -m learnhub.cli ...`, the same as `learnhub ...`."""

import sys

from . import main

sys.exit(main())
