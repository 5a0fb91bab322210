import sys

from ecspilot.cli import main

sys.exit(main())
