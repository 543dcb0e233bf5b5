"""`python -m bench`: run the benchmark from the top of the checkout (`python -m bench desk`:
the intake desk's server time with thousands of submissions)."""

import sys

if sys.argv[1:2] == ["desk"]:
    from bench.desk import main as desk

    sys.exit(desk(sys.argv[2:]))

from bench.run import main

sys.exit(main())
