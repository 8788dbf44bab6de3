"""The Training tab on the data-parallel path (engine/parallel.py): batches
split over spawned worker processes, one per core, with pause, step, stop,
closing and a dying worker behaving as on one core. Needs 2 usable cores."""

import os
import signal

import pytest
from PyQt6.QtWidgets import QMessageBox

from cnnviz.engine.parallel import usable_cores
from cnnviz.gui.training import TrainingTab

from dialogs import Answer
from test_training_tab import subset_dir, wait_state  # noqa: F401  (fixture)

pytestmark = pytest.mark.skipif(usable_cores() < 2, reason="needs 2 usable cores")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:           # a zombie is gone too
        return f.read().split(") ")[-1][0] != "Z"


@pytest.fixture
def tab(qtbot, subset_dir):  # noqa: F811
    tab = TrainingTab(data_dir=str(subset_dir), workers=2)
    tab.setup.epochs.setValue(20)
    tab.resize(1400, 900)
    tab.show()
    yield tab
    if tab.isVisible():
        discard = Answer(QMessageBox.StandardButton.Discard)
        tab.close()
        discard.stop()
    assert tab.shutdown(3.0), "the training thread was left running"


def split_batches(tab, n, qtbot, timeout=30_000):
    engine = tab.trainer.step_engine
    start = engine.parallel_batches
    qtbot.waitUntil(lambda: engine.parallel_batches >= start + n, timeout=timeout)
    return engine


def test_batches_are_split_over_two_processes_and_pause_step_stop_work(qtbot, tab):
    tab.start()
    engine = split_batches(tab, 5, qtbot)
    assert engine.parallel and engine.workers == 2
    pids = engine.worker_pids
    assert len(pids) == 1 and alive(pids[0])
    qtbot.waitUntil(lambda: " on 2 cores · " in tab.status.text(), timeout=5_000)

    tab.pause()
    wait_state(qtbot, tab, "paused")
    steps = tab.trainer.step
    tab.step()
    qtbot.waitUntil(lambda: tab.trainer.step == steps + 1, timeout=10_000)
    assert engine.worker_pids == pids          # the workers wait through a pause

    tab.resume()
    split_batches(tab, 3, qtbot)
    tab.stop()
    wait_state(qtbot, tab, "stopped")
    qtbot.waitUntil(lambda: not alive(pids[0]), timeout=3_000)
    assert not engine.running


def test_closing_mid_run_ends_the_worker_processes(qtbot, tab):
    tab.start()
    engine = split_batches(tab, 3, qtbot)
    pids = engine.worker_pids
    discard = Answer(QMessageBox.StandardButton.Discard)
    tab.close()
    discard.stop()
    assert tab.shutdown(3.0)
    qtbot.waitUntil(lambda: not any(alive(p) for p in pids), timeout=3_000)


def test_a_killed_worker_is_reported_and_training_goes_on_in_one_process(qtbot, tab):
    tab.start()
    engine = split_batches(tab, 3, qtbot)
    os.kill(engine.worker_pids[0], signal.SIGKILL)
    qtbot.waitUntil(lambda: "training worker 1 exited" in tab.status.text(), timeout=15_000)
    assert "training goes on in one process" in tab.status.text()
    steps = tab.trainer.step
    qtbot.waitUntil(lambda: tab.trainer.step >= steps + 5, timeout=15_000)
    assert tab.state == "running" and not engine.running


def test_a_closing_program_does_not_wait_for_its_workers(qtbot, tab):
    """shutdown(for_exit=True), as the window's close before os._exit: the
    workers are told to exit and not joined; they go by themselves and the
    shared block's name is removed when the training thread ends."""
    tab.start()
    engine = split_batches(tab, 3, qtbot)
    pids, name = engine.worker_pids, engine._block.shm.name
    assert tab.shutdown(for_exit=True)
    assert engine._leaving
    qtbot.waitUntil(lambda: not any(alive(p) for p in pids), timeout=5_000)
    qtbot.waitUntil(lambda: not tab.runner.is_running() or tab.runner._writes_held, timeout=5_000)
    tab.session.mark_saved(tab.trainer, tab.trainer.step)
    assert tab.shutdown(3.0)                        # the exit called off: joined after all
    assert not os.path.exists(f"/dev/shm/{name.lstrip('/')}")
