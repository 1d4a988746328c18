"""`python -m oncue`: the `oncue` command."""

import sys

from oncue.http.cli import main

sys.exit(main())
