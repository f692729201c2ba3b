import sys

from tsstats.cli import main

sys.exit(main())
