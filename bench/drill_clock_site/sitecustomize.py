"""Loaded by every Python process whose PYTHONPATH holds this folder (`bench/drill_clock.py` puts it there).

Only an export's calendar process, started while `bench/drill_clock.activate` is on
(its PYTHONPATH begins with the checkout, so it clocks that checkout's watches).
"""

import os
import sys

if os.environ.get("LIFEBOAT_BENCH_DRILL_CLOCK"):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    import drill_clock

    drill_clock.in_child()
