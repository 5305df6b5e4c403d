"""The process runner: tests in worker processes (backends ``loky``, ``multiprocessing`` and
registered process backends), reports replayed in the main process.

How a run goes.

- **Planning** (``planning``, ``scheduling``, ``durations``): the collected tests are cut into
  *units*, consecutive tests for one worker (a module or class kept whole unless that hurts the
  balance), longest first by the durations recorded in pytest's cache.
- **Rounds** (``rounds``, ``controller``): a round is one ``Parallel`` call: the planned units,
  then one end-of-round task per worker, with which each worker ends its session. Tests left
  over by a crash (those its worker had not started, or held) run in the next round, on fresh
  sessions.
- **The held test** (``worker``): pytest tears fixtures down according to ``nextitem``. A
  worker runs each test through ``pytest_runtest_protocol`` with its true successor, so the
  last test of a unit is held and run first in the worker's next task, once its successor is
  known (or at the end of the round, with none). Session, package and module fixtures so live
  as long as the worker has tests that need them.
- **Fork take-over** (``inherit``, ``session``): where it is safe (POSIX, one thread),
  workers are forked after collection and take the main process's collected session over: no
  new interpreter, no second collection. Otherwise (``--par-start=collect``, replacements, later
  rounds) a worker builds a session of its own from the same arguments and finds its tests by
  node id. Either way it looks like an xdist worker to other plugins (``compat``).
- **Crashes** (``rundir``, ``collector``, ``crashes``, ``verdict``): each worker writes its
  progress to a log in the run directory as it goes; when it dies, the main process replays what
  it finished, blames the test it was running (in the phase it was in), and a fresh worker goes
  on, within ``--par-max-worker-restart``.
"""
