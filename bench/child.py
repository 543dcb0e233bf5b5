"""One `mailbot run --once` in a process of its own, timed from inside.

    python -m bench.child CONFIG RESULT.json [PROFILE-STEM]

Runs the mailbot command line exactly as an operator does (``mailbot
--config CONFIG run --once``: fetch, parse, judge, read the forms, store,
queue and send the replies, file the mail) and writes how long the command
took, apart from starting Python and importing mailbot, to RESULT.json.
With PROFILE-STEM the command runs under pyinstrument (a development tool,
not a dependency of mailbot), which writes PROFILE-STEM.txt and .html.
"""

from __future__ import annotations

import json
import os
import sys
import time

STARTED = time.perf_counter()


def main(argv: list[str]) -> int:
    config, result = argv[0], argv[1]
    profile = argv[2] if len(argv) > 2 else None
    from mailbot.cli import main as command

    imported = time.perf_counter()
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
        profiler.start()
    began = time.perf_counter()
    code = 0
    try:
        command.main(["--config", config, "run", "--once"], standalone_mode=False)
    except SystemExit as exc:  # one_line_errors exits 2 with the reason on stderr
        code = exc.code if isinstance(exc.code, int) else 1
    ended = time.perf_counter()
    if profiler is not None:
        profiler.stop()
        with open(f"{profile}.txt", "w", encoding="utf-8") as out:
            # Paths relative to the checkout: the results name no folder of the machine.
            root = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
            out.write(profiler.output_text(unicode=True, color=False).replace(root, ""))
        with open(f"{profile}.html", "w", encoding="utf-8") as out:
            out.write(profiler.output_html())
    with open(result, "w", encoding="utf-8") as out:
        json.dump({"exit": code, "import_s": imported - STARTED, "run_s": ended - began}, out)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
