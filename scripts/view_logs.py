#!/usr/bin/env python3
"""Show the call log (the same as `gateway logs`); run from the repo root: python scripts/view_logs.py --help."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.calllog.viewer import main
from gateway.settings import ROOT, load_env

sys.exit(main(sys.argv[1:], "view_logs.py", load_env(ROOT), ROOT))
