"""`python -m tfuav.runtime MODEL --source ...` (and the same for a vendored copy of this
folder, e.g. `python -m tfuav_runtime ...` in the Raspberry Pi / Coral bundle)."""
import sys

from .app import main

sys.exit(main(prog=f"python -m {__package__}"))
