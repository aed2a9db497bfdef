"""`python -m emergelab` runs the command line."""

import sys

from emergelab.cli import main

sys.exit(main())
