"""`python -m bench`: run the benchmark from the top of the checkout."""

import sys

from bench.run import main

sys.exit(main())
