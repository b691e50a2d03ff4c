"""Child phases of the benchmark: ``python -m uptime.tools.bench PHASE URI DB AS_OF OUT``."""

import sys

from uptime.tools.bench.measure import phase_main

phase_main(sys.argv[1:])
