"""`python -m t2i ...` is the `t2i` command; torchrun launches it as `torchrun ... -m t2i train`."""

import sys

from .cli import main

sys.exit(main())
