"""`python -m partisim` is the `partisim` command."""

import sys

from partisim.cli import main

sys.exit(main())
