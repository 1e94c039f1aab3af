"""`python -m minimovinet ...`: the same as the `minimovinet` command."""
import sys

from .cli import entry_point

sys.exit(entry_point())
