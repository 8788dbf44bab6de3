"""`python -m cnnviz` and the `cnnviz` command: the command line's entry,
which imports it inside a handler so that a Ctrl-C during the imports ends
with one line, not a traceback."""

import sys


def run() -> int:
    # first: its atexit handler must be the last to run (see fast_exit)
    from cnnviz import fast_exit
    fast_exit.install()
    try:
        from cnnviz.cli import main
    except KeyboardInterrupt:
        print("cnnviz: interrupted", file=sys.stderr)
        code = 130
    else:
        code = main()
    if code == 130:
        # Interrupted (Ctrl-C): end with 130 for certain. A Ctrl-C during the
        # imports sometimes ended the process by SIGINT (status -2) after its
        # one line, whatever was returned: 2 of 80 Ctrl-Cs 0.15-0.5 s after
        # start. Most likely CPython's "unhandled KeyboardInterrupt" flag,
        # which Py_RunMain reads last, was left set by one caught inside an
        # extension's import (NumPy's). fast_exit ends the process after
        # every other exit handler has run.
        fast_exit.arm(130)
    return code


if __name__ == "__main__":
    raise SystemExit(run())
