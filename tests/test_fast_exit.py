"""cnnviz.fast_exit in a child process: armed, the process ends with the
armed code after every other atexit handler ran and with its output
flushed, but without the interpreter's teardown; not armed, nothing
changes."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r'''
import atexit, os, sys
from cnnviz import fast_exit
fast_exit.install()                       # first, as cnnviz.__main__.run does
atexit.register(lambda: os.write(1, b"later handler ran\n"))

class Teardown:
    """Its __del__ runs when the interpreter frees the modules' objects."""
    def __del__(self, write=os.write):
        write(1, b"torn down\n")
witness = Teardown()
print("buffered", end="")                 # not flushed yet: the exit must flush it
if sys.argv[1] != "none":
    fast_exit.arm(int(sys.argv[1]))
    if sys.argv[2:] == ["disarm"]:
        fast_exit.disarm()
'''


def run(*args):
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


def test_armed_it_ends_after_the_other_handlers_with_the_code_and_no_teardown():
    r = run("3")
    assert r.returncode == 3, r.stderr
    assert r.stdout == "later handler ran\nbuffered" or r.stdout == "bufferedlater handler ran\n"
    assert "torn down" not in r.stdout


def test_not_armed_or_disarmed_the_normal_exit_and_teardown():
    for args in (("none",), ("3", "disarm")):
        r = run(*args)
        assert r.returncode == 0, r.stderr
        assert "later handler ran" in r.stdout and "buffered" in r.stdout
        assert "torn down" in r.stdout
