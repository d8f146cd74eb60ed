"""``python -m envknit``: the command line."""

import sys

from .cli import console

sys.exit(console())
