"""Step engines: what computes the loss and the gradients of one training batch.

``LocalStep`` does it in this process (forward, loss, backward). ``ParallelStep``
splits each batch between this process and ``workers - 1`` worker processes,
one per core: the parameters go to shared memory, every participant runs
forward + loss + backward on its rows with the loss scaled by rows / batch
(so the scaled gradients add up to the full batch's mean-loss gradient), each
worker writes its gradients to its own slot of shared memory, and this process
adds them to its own. The trainer then runs ONE optimizer step on the sum, in
this process: weights, optimizer state, divergence handling, the probe and
checkpoints never leave it. ``predict`` splits inference the same way (the
trainer's test evaluation): each participant runs the model on its rows and the
workers write their outputs to shared memory.

Why processes: at LeNet-5's sizes a second BLAS thread adds nothing, and two
Python threads share the interpreter lock; two processes with one BLAS thread
each (threadpoolctl; two each oversubscribe 2 cores and run ~8x slower) nearly
double the throughput. Synchronisation is a spin on per-worker step counters in
the shared block (multiprocessing.Barrier was several times slower); the
counters are written after the data they announce, which x86's store order
makes sufficient.

Layers that look across the rows of a batch see each participant's rows
only: BatchNorm2d normalises with the statistics of its share (as PyTorch's
DataParallel without synchronised batch norm), and its running statistics
are those of this process's share (the workers' are never read: inference
hands them this process's, so a split evaluation equals one here); each
worker draws its own Dropout masks (``fork_rng``), else it would drop the
same positions in its rows as this process in its own.

Workers are started with ``spawn`` (a process that runs Qt must never fork),
lazily at the first batch and in the background: batches run here alone until
every worker has reported ready, so the first batch is not delayed. A worker
exits when its parent dies (it watches ``os.getppid()``), when told to, or on
an error (then this process goes on alone and says why in ``failure``).
"""

from __future__ import annotations

import os
import pickle
import signal
import time
import traceback

import numpy as np

_ALIGN = 64
# control words (int64) at the start of the shared block
_SEQ, _ROWS, _SHUTDOWN, _TASK, _FIRST = 0, 1, 2, 3, 4   # then per worker: done, ready, error
_TRAIN, _PREDICT = 0, 1     # the tasks: gradients of a batch, or the model's output
PREDICT_ROWS = 1000         # rows of one shared inference batch (evaluation's batch)
_IDLE_SPIN = 0.02       # seconds a worker spins for the next batch before it naps
_NAP = 0.0005           # seconds of the first nap; each next one twice as long ...
_LONGEST_NAP = 0.01     # ... up to this: a paused GUI run costs ~0 CPU, resuming <= 10 ms
_EXIT_WAIT = 0.3        # seconds stop_workers waits for the workers to exit before killing them


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:          # not Linux
        return max(os.cpu_count() or 1, 1)


def resolve_workers(workers) -> int:
    """Processes that compute each batch: ``None`` means one per usable core."""
    if workers is None:
        return usable_cores()
    if isinstance(workers, bool) or int(workers) != workers or workers < 1:
        raise ValueError(f"workers must be None (one per core) or a whole number >= 1, "
                         f"got {workers!r}")
    return int(workers)


def make_step_engine(model, loss_fn, workers=1, *, sample_shape, max_batch,
                     diverged_above=float("inf")):
    """A LocalStep for one process, a ParallelStep for more: at most one per
    usable core (more only slow each other down, and a checkpoint made on a
    bigger machine must still run here) and per row of a batch."""
    n = min(resolve_workers(workers), usable_cores(), max_batch)
    if n == 1:
        return LocalStep(model, loss_fn, diverged_above)
    return ParallelStep(model, loss_fn, n, sample_shape=sample_shape, max_batch=max_batch,
                        diverged_above=diverged_above)


def _correct(logits, labels) -> int:
    return int(np.count_nonzero(logits.argmax(axis=1) == labels))


class LocalStep:
    """Loss and gradients of a batch in this process: the single-core path."""

    workers = 1
    parallel = False
    failure = ""

    def __init__(self, model, loss_fn, diverged_above=float("inf")):
        self.model, self.loss_fn, self.diverged_above = model, loss_fn, diverged_above

    def gradients(self, x, labels):
        """(mean loss, correct predictions) of the batch; each parameter's
        ``grad`` is then d(mean loss)/d(parameter). Past ``diverged_above``
        (or not finite) there is no backward pass: nothing would use it."""
        logits = self.model.train_forward(x)
        loss = self.loss_fn(logits, labels)
        if loss < self.diverged_above:
            self.model.train_backward(self.loss_fn.backward())
        return loss, _correct(logits, labels)

    def predict(self, x):
        """The model's output for x (``Sequential.predict``)."""
        return self.model.predict(x)

    def stop_workers(self):
        pass

    def leave_workers_at_exit(self):
        pass

    close = stop_workers


# --------------------------------------------------------------------------
class _Block:
    """One shared-memory block cut into named arrays at aligned offsets."""

    def __init__(self, layout, name=None):
        from multiprocessing import shared_memory
        offsets, end = {}, 0
        for key, shape, dtype in layout:
            end = -(-end // _ALIGN) * _ALIGN
            offsets[key] = (end, shape, np.dtype(dtype))
            end += int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        # spawned workers share their parent's resource tracker: the block is
        # registered once, unlinked by its creator (or by the tracker if the
        # creator is killed)
        self.shm = shared_memory.SharedMemory(name=name, create=name is None, size=max(end, 1))
        self.arrays = {k: np.ndarray(shape, dtype, self.shm.buf, off)
                       for k, (off, shape, dtype) in offsets.items()}

    def close(self, unlink=False):
        self.arrays = {}
        try:
            self.shm.close()
        except BufferError:         # a layer still holds a view: the OS frees it at exit
            pass
        if unlink:
            try:
                self.shm.unlink()
            except FileNotFoundError:
                pass


def _layout(param_sizes, n_workers, sample_shape, rows, dtype, model_bytes, out_shape,
            buffer_size=0):
    total = sum(param_sizes)
    return [("model", (model_bytes,), np.uint8),             # the pickled model
            ("ctrl", (_FIRST + 3 * n_workers,), np.int64),
            ("params", (total,), dtype),
            ("buffers", (max(buffer_size, 1),), np.float64),  # BatchNorm's statistics
            ("grads", (n_workers, total), dtype),        # row 0 (this process) unused
            ("stats", (n_workers, 2), np.float64),       # loss * rows, correct
            ("x", (rows, *sample_shape), dtype),
            ("y", (rows,), np.int64),
            ("out", (rows, *out_shape), dtype)]          # the workers' inference rows


def _output_shape(model, sample_shape):
    """The shape of one sample's model output, or None if a layer cannot say."""
    shape = (1, *sample_shape)
    try:
        for layer in model.layers:
            shape = tuple(layer.output_shape(shape))
    except Exception:
        return None
    return shape[1:]


def _rows(n, parts, i):
    """Rows [a, b) of a batch of n for participant i of ``parts``."""
    return i * n // parts, (i + 1) * n // parts


def _flat_views(flat, shapes):
    out, off = [], 0
    for shape in shapes:
        size = int(np.prod(shape, dtype=np.int64))
        out.append(flat[off:off + size].reshape(shape))
        off += size
    return out


class ParallelStep:
    """Loss and gradients of a batch split over ``workers`` processes (this
    one included). Same interface as LocalStep."""

    parallel = True

    def __init__(self, model, loss_fn, workers, *, sample_shape, max_batch,
                 diverged_above=float("inf")):
        if workers < 2:
            raise ValueError("ParallelStep needs at least 2 workers; use LocalStep")
        self.model, self.loss_fn, self.diverged_above = model, loss_fn, diverged_above
        self.local = LocalStep(model, loss_fn, diverged_above)
        self.workers = int(workers)
        self.sample_shape, self.max_batch = tuple(sample_shape), int(max_batch)
        self.params = model.parameters()
        self.buffers = model.buffers()
        self.dtype = self.params[0].value.dtype
        out_shape = _output_shape(model, self.sample_shape)
        # inference is split only when the output's shape is known
        self._out_shape = () if out_shape is None else out_shape
        self._predict_rows = 0 if out_shape is None else max(PREDICT_ROWS, self.max_batch)
        self.failure = ""           # why the workers were given up, if they were
        self._procs, self._block, self._seq, self._ready = [], None, 0, False
        self._conns = []
        self._limiter = None
        self.parallel_batches = 0   # batches split over the workers (the rest ran here alone)
        self._leaving = False
        self.parallel_predictions = 0   # inference batches split over them

    # --- life cycle ------------------------------------------------------------
    @property
    def running(self) -> bool:
        return bool(self._procs)

    def start_workers(self):
        """Start the worker processes (returns at once; they get ready in the
        background while batches run here alone)."""
        if self._procs or self.failure:
            return
        # Ctrl-C is the parent's to handle. A worker can only ignore it once
        # its interpreter runs our code; until then (up to a second) a
        # terminal's Ctrl-C, sent to the whole process group, printed a
        # traceback from its start-up. So SIGINT is *blocked* in this thread
        # while they are started: the mask is inherited through spawn's fork
        # and exec, a Ctrl-C in a worker's start-up waits there until the
        # worker ignores it (which discards it), and one sent to this process
        # meanwhile waits the few ms until the mask is restored, then arrives
        # as usual. (Ignoring it here instead, as before, lost a Ctrl-C that
        # came in those ms.) The mask is per thread: any thread may do this.
        # multiprocessing's resource tracker, started on first use, unblocks
        # SIGINT after its own spawn: started first, outside the block
        from multiprocessing import resource_tracker
        resource_tracker.ensure_running()
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self._start_workers()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def _start_workers(self):
        self._leaving = False
        import multiprocessing as mp
        ctx = mp.get_context("spawn")
        shapes = [p.value.shape for p in self.params]
        # the model goes through shared memory, not the start pipe: a pickle
        # larger than the pipe's buffer would block start() until the child
        # has imported numpy (measured: 1.4 s on a busy 2-core machine)
        model_bytes = pickle.dumps(self.model, protocol=pickle.HIGHEST_PROTOCOL)
        buffer_shapes = [b.value.shape for b in self.buffers]
        layout = _layout([int(np.prod(s, dtype=np.int64)) for s in shapes], self.workers,
                         self.sample_shape, max(self.max_batch, self._predict_rows), self.dtype,
                         len(model_bytes), self._out_shape,
                         sum(int(np.prod(s, dtype=np.int64)) for s in buffer_shapes))
        self._block = b = _Block(layout)
        a = b.arrays
        a["ctrl"][:] = 0
        a["model"][:] = np.frombuffer(model_bytes, np.uint8)
        self._param_views = _flat_views(a["params"], shapes)
        self._buffer_views = _flat_views(a["buffers"], buffer_shapes)
        self._grad_views = [_flat_views(a["grads"][w], shapes) for w in range(self.workers)]
        self._limit_blas()
        for w in range(1, self.workers):
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker_main, name=f"cnnviz-train-worker-{w}", daemon=True,
                               args=(w, self.workers, b.shm.name, layout, shapes,
                                     buffer_shapes, os.getpid(), send))
            proc.start()
            send.close()
            self._procs.append(proc)
            self._conns.append(recv)

    def wait_ready(self, timeout: float) -> bool:
        """Block until every worker is ready (True) or ``timeout`` s passed
        or a worker failed (False). The trainer never waits; tests and benches do."""
        self.start_workers()
        deadline = time.monotonic() + timeout
        while not self._check_ready():
            if not self._procs or time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    @property
    def worker_pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def stop_workers(self):
        """Tell the workers to exit, wait for them briefly (then kill them),
        free the shared block. Safe to call more than once; the next batch starts them again."""
        procs, self._procs = self._procs, []
        if self._block is not None:
            ctrl = self._block.arrays["ctrl"]
            ctrl[_SHUTDOWN] = 1
            # A worker still starting (importing NumPy: seconds on a busy
            # machine) looks at the flag only once it runs its loop, and has
            # nothing to lose: ended now, a stop in a run's first seconds
            # does not wait up to 2 s for it.
            for w, p in enumerate(procs, 1):
                if not ctrl[_FIRST + 3 * w + 1]:
                    p.kill()
        if self._leaving:           # the process is ending: no joins (see leave_workers_at_exit)
            procs = []
        # A worker has nothing to save: one that has not ended within the
        # wait (an interpreter's teardown takes a second on a busy machine,
        # more than the GUI's Stop may wait for the training thread) is killed.
        deadline = time.monotonic() + _EXIT_WAIT
        for p in procs:
            p.join(max(deadline - time.monotonic(), 0.01))
            if p.is_alive():
                p.kill()
                p.join(1.0)
        for c in self._conns:
            c.close()
        self._conns, self._ready, self._seq = [], False, 0
        self._param_views = self._grad_views = None
        if self._block is not None:
            self._block.close(unlink=True)
            self._block = None
        self._unlimit_blas()

    close = stop_workers

    def leave_workers_at_exit(self):
        """This process is about to end (the GUI's os._exit): tell the
        workers to exit and never wait for them. A batch in flight still
        completes (a worker looks at the flag only between batches) and the
        trainer's own stop_workers then frees the block without joining; a
        worker exits by itself on the flag, or when it sees this process gone,
        and multiprocessing's exit handler reaps what is left. Joining cost
        0.1-0.5 s of a close (a spawned interpreter's teardown, on a busy machine)."""
        self._leaving = True
        if self._block is not None:
            self._block.arrays["ctrl"][_SHUTDOWN] = 1

    def __del__(self):
        try:
            self.stop_workers()
        except Exception:
            pass

    def _limit_blas(self):
        # one BLAS thread here too while the workers run: 2 per process on
        # 2 cores oversubscribe them
        if self._limiter is None:
            from threadpoolctl import threadpool_limits
            self._limiter = threadpool_limits(limits=1, user_api="blas")

    def _unlimit_blas(self):
        if self._limiter is not None:
            self._limiter.restore_original_limits()
            self._limiter = None

    def _check_ready(self) -> bool:
        if not self._ready and self._procs:
            ctrl = self._block.arrays["ctrl"]
            self._ready = all(ctrl[_FIRST + 3 * w + 1] for w in range(1, self.workers))
            if not self._ready:
                self._check_alive()
        return self._ready

    def _check_alive(self):
        """Give the workers up (and say why) if one of them died or failed."""
        ctrl = self._block.arrays["ctrl"]
        for w, (p, c) in enumerate(zip(self._procs, self._conns), 1):
            if ctrl[_FIRST + 3 * w + 2] or not p.is_alive():
                why = f"exited with code {p.exitcode}" if not p.is_alive() else "failed"
                try:
                    if c.poll(0.5):
                        why = f"failed: {c.recv()}"
                except (EOFError, OSError):
                    pass
                self.failure = (f"training worker {w} {why}; training goes on in one process")
                self.stop_workers()
                return False
        return True

    # --- one batch ----------------------------------------------------------
    def gradients(self, x, labels):
        """As LocalStep.gradients, the batch split over the workers once they
        are ready (until then, and after a failure, in this process alone)."""
        n = len(labels)
        if not self._procs and not self.failure:
            self.start_workers()
        # a batch that is not of the planned shape runs here, where the model
        # itself says what is wrong with it
        if (n < self.workers or n > self.max_batch or x.shape[1:] != self.sample_shape
                or not self._check_ready()):
            return self.local.gradients(x, labels)
        a = self._block.arrays
        parts = self.workers
        own = _rows(n, parts, 1)[0]
        a["y"][own:n] = labels[own:]
        seq = self._post(_TRAIN, x)
        # this process's share, the loss scaled to its part of the batch
        logits = self.model.train_forward(x[:own])
        loss = self.loss_fn(logits, labels[:own]) * own
        g = self.loss_fn.backward()
        g *= np.asarray(own / n, g.dtype)
        self.model.train_backward(g)
        correct = _correct(logits, labels[:own])
        if not self._wait(seq):
            return self.local.gradients(x, labels)   # this batch again, alone
        for w in range(1, parts):
            a0, a1 = _rows(n, parts, w)
            if a1 > a0:
                for p, gv in zip(self.params, self._grad_views[w]):
                    p.grad[...] += gv
                loss += a["stats"][w, 0]
                correct += int(a["stats"][w, 1])
        self.parallel_batches += 1
        return float(loss / n), correct

    def predict(self, x):
        """The model's output for x (as ``Sequential.predict``), the rows split
        over the workers once they are ready (in this process alone until then,
        after a failure, and for fewer rows than workers). Never starts them:
        one evaluation is not worth a second of start-up."""
        n = len(x)
        if (not self._predict_rows or not self._procs or n < self.workers
                or not self._check_ready()):
            return self.model.predict(x)
        out = np.empty((n, *self._out_shape), self.dtype)
        for a in range(0, n, self._predict_rows):
            b = min(a + self._predict_rows, n)
            if b - a < self.workers:
                out[a:b] = self.model.predict(x[a:b])
                continue
            seq = self._post(_PREDICT, x[a:b])
            own = _rows(b - a, self.workers, 1)[0]
            out[a:a + own] = self.model.predict(x[a:a + own])
            if not self._wait(seq):
                out[a:] = self.model.predict(x[a:])   # the rest alone
                return out
            out[a + own:b] = self._block.arrays["out"][own:b - a]
            self.parallel_predictions += 1
        return out

    def _post(self, task, x) -> int:
        """Hand the workers the current parameters and their rows of x; returns
        the sequence number their answers will carry."""
        a = self._block.arrays
        ctrl, n = a["ctrl"], len(x)
        for view, p in zip(self._param_views, self.params):
            view[...] = p.value
        if task == _PREDICT:        # inference uses this process's running statistics
            for view, b in zip(self._buffer_views, self.buffers):
                view[...] = b.value
        own = _rows(n, self.workers, 1)[0]
        a["x"][own:n] = x[own:]
        ctrl[_TASK] = task
        ctrl[_ROWS] = n
        self._seq += 1
        ctrl[_SEQ] = self._seq            # last: announces everything above
        return self._seq

    def _wait(self, seq) -> bool:
        """Spin until every worker has answered ``seq``; False (the workers
        given up, see ``failure``) if one of them died."""
        ctrl, spins = self._block.arrays["ctrl"], 0
        for w in range(1, self.workers):
            while ctrl[_FIRST + 3 * w] != seq:
                spins += 1
                if spins % 4096 == 0 and not self._check_alive():
                    return False
                os.sched_yield()
        return True


# --------------------------------------------------------------------------
def _parent_gone(parent_pid) -> bool:
    return os.getppid() != parent_pid


def _worker_main(index, parts, shm_name, layout, shapes, buffer_shapes, parent_pid, conn):
    """A worker process: wait for each batch, compute its rows, post the gradients."""
    # Ctrl-C is for the parent to handle; it came blocked (start_workers):
    # ignored first, which drops one that came during the start-up
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=1, user_api="blas")
    np.seterr(over="ignore", invalid="ignore")      # divergence is the parent's to judge
    block = None
    try:
        block = _Block(layout, name=shm_name)
        a = block.arrays
        ctrl = a["ctrl"]
        model = pickle.loads(a["model"].tobytes())
        for layer in model.layers:          # Dropout: masks of this worker's own
            if hasattr(layer, "fork_rng"):
                layer.fork_rng(index)
        params = model.parameters()
        # the worker's model reads its weights straight from shared memory
        for p, view in zip(params, _flat_views(a["params"], shapes)):
            p.layer.params[p.key] = view
        grad_views = _flat_views(a["grads"][index], shapes)
        buffers = list(zip(model.buffers(), _flat_views(a["buffers"], buffer_shapes)))
        from .losses import SoftmaxCrossEntropy
        loss_fn = SoftmaxCrossEntropy()
        done = _FIRST + 3 * index
        ctrl[done + 1] = 1                              # ready
        last = int(ctrl[_SEQ])
        idle_since, spins, napping, nap = time.monotonic(), 0, False, _NAP
        while True:
            seq = int(ctrl[_SEQ])
            if seq == last:
                spins += 1
                if napping or spins % 1024 == 0:
                    if ctrl[_SHUTDOWN] or _parent_gone(parent_pid):
                        return
                    napping = napping or time.monotonic() - idle_since > _IDLE_SPIN
                if napping:
                    time.sleep(nap)         # paused or evaluating: free the core
                    nap = min(nap * 2, _LONGEST_NAP)
                else:
                    os.sched_yield()
                continue
            last = seq
            n = int(ctrl[_ROWS])
            r0, r1 = _rows(n, parts, index)
            if ctrl[_TASK] == _PREDICT:
                for b, view in buffers:     # the parent's: its own come from its shares only
                    b.value[...] = view
                if r1 > r0:
                    a["out"][r0:r1] = model.predict(a["x"][r0:r1])
            elif r1 > r0:
                x, y = a["x"][r0:r1], a["y"][r0:r1]
                logits = model.train_forward(x)
                loss = loss_fn(logits, y)
                g = loss_fn.backward()
                g *= np.asarray((r1 - r0) / n, g.dtype)
                model.train_backward(g)
                for view, p in zip(grad_views, params):
                    view[...] = p.grad
                a["stats"][index] = (loss * (r1 - r0), _correct(logits, y))
            ctrl[done] = seq                            # last: announces the above
            idle_since, napping, nap = time.monotonic(), False, _NAP
    except BaseException:
        if block is not None and "ctrl" in block.arrays:
            block.arrays["ctrl"][_FIRST + 3 * index + 2] = 1
        try:
            conn.send(traceback.format_exc(limit=3).strip().splitlines()[-1])
        except Exception:
            pass
    finally:
        if block is not None:
            block.close()
