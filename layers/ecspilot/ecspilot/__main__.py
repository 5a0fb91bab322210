import sys

from ecspilot.interfaces.cli import main

sys.exit(main())
