"""``python -m mock_portal``: serve the mock portal (see ``--help``)."""

import sys

from .server import main

sys.exit(main())
