"""``python -m benchmarks [--quick | --tiny] [--json PATH] [--markdown PATH] [--only GROUPS]`` from a checkout."""

import sys

from .run import main

sys.exit(main())
