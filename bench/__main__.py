"""`python -m bench`: run the benchmark from the top of the checkout (`python -m bench desk`:
the intake desk's server time with thousands of submissions; `python -m bench checkjson`:
is `mailbot check --json` unchanged on every mail we hold; `python -m bench cli`: how long
`mailbot --help`, `check`, `log` and `show` take, each a whole process; `python -m bench seal`:
the seal finder's recall, false alarms and time per 5-page scan; `python -m bench outbox`:
replies a second in one run over the outbox, and the SMTP sessions it takes)."""

import sys

if sys.argv[1:2] == ["desk"]:
    from bench.desk import main as desk

    sys.exit(desk(sys.argv[2:]))
if sys.argv[1:2] == ["seal"]:
    from bench.seal import main as seal

    sys.exit(seal(sys.argv[2:]))
if sys.argv[1:2] == ["checkjson"]:
    from bench.checkjson import main as checkjson

    sys.exit(checkjson(sys.argv[2:]))
if sys.argv[1:2] == ["outbox"]:
    from bench.outbox import main as outbox

    sys.exit(outbox(sys.argv[2:]))
if sys.argv[1:2] == ["cli"]:
    from bench.cli import main as cli

    sys.exit(cli(sys.argv[2:]))

from bench.run import main

sys.exit(main())
