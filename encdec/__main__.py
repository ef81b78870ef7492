"""``python -m encdec``: the same as the ``encdec`` command.

Example:
    >>> import subprocess, sys
    >>> subprocess.run([sys.executable, "-m", "encdec", "list", "--names"], capture_output=True).returncode
    0
"""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
