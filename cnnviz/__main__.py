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
        fast_exit.arm(130)      # see cli._end_interrupted
        return 130
    return main()


if __name__ == "__main__":
    raise SystemExit(run())
