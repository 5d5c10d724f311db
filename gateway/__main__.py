"""`python -m gateway ...` is the same as the `gateway` console command."""

import sys

from gateway.cli import main

sys.exit(main())
