"""`python -m ctilink.adapters.cli`: the `ctilink` command."""

import sys

from ctilink.adapters.cli.main import main

sys.exit(main())
