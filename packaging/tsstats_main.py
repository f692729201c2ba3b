"""Entry point of the one-file executable built by scripts/build-binary.sh."""

import sys

from tsstats.cli import main

if __name__ == "__main__":
    sys.exit(main())
