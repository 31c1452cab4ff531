"""``python -m speakerrpl`` runs the CLI."""

import sys

from speakerrpl.cli import main

sys.exit(main())
