"""``python -m deltaprop`` runs the command line, like the ``deltaprop`` script."""

import sys

from deltaprop.cli import main

sys.exit(main())
