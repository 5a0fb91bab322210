"""``make bench``: run every benchmark and print its tables."""

import os

os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

from bench import fanout

fanout.main()
