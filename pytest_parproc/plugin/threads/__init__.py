"""The threading runner (``--par-backend=threading``): different tests at the same time in
threads of the main process, with pytest's semantics kept. One collection, no worker start-up,
nothing serialized, session fixtures shared.

The approach. pytest runs one test at a time and keeps per-process state for "the current
test". Each piece is handled explicitly, for the length of the run only:

- Set-up state (``session._setupstate``, one stack): replaced by a concurrent one
  (``setup_state.ConcurrentSetupState``). A collector (session, package, module, class) is
  set up once by the first test that needs it, under a lock, and torn down by the teardown of
  its last test to start, which waits there for the others; each test keeps its own
  finalizers.
- Fixture values (``FixtureDef.cached_result``, one per definition; ``fixtures``): kept
  per slot, a slot being the fixture's scope node (the test, its class, module, package or
  session) plus the parameters of the fixture and of those it depends on. Two concurrent
  tests never share a function fixture or ``tmp_path``; tests share a module fixture as in a
  serial run. Each value of a wider fixture is created and finalized under a lock of its own,
  so once.
- Parameters of wider fixtures (``serial_lane.segments``): tests with different ones take
  turns, in pytest's order; one instance at a time, torn down before the next, as serially.
- Captured output: ``sys.stdout`` and ``sys.stderr`` become routers that send each write to the
  buffers of the test its thread runs (``capture``); ``capsys`` captures per thread. What a
  test writes to file descriptors (subprocesses, C code) cannot be told apart: such tests need
  ``capfd``, which puts them in the serial lane.
- Log records: one root-logger handler passes each record to the handler of the test running
  on the thread that logged it.
- Warnings: the process's filters let every warning through to one hook, which applies the
  filters of the test on that thread (configured ones plus its marks) with its own registry;
  ``warnings.catch_warnings`` and the filter functions act per thread on a test thread
  (``warning_filters``), since libraries and pytest itself use them while a test runs.
- ``PYTEST_CURRENT_TEST`` and the assertion-rewriting hooks become per-thread; ``ast.parse``
  and numbered temporary directories are made one thread at a time (``isolation``).
- Reports: a test thread runs ``pytest_runtest_protocol`` with every plugin's wrappers, but
  the protocol itself returns the reports instead of logging them; the main thread replays
  them, so reporting plugins (terminal, junitxml) are only ever called from the main thread.

Tests that cannot be isolated this way (``serial_lane``) run alone afterwards (at the end of
their parameters' turn) in the main thread, exactly as pytest runs them, with no other test
running and the pool's threads gone.

How many tests run at once (``admission``): ``--n-jobs`` while tests wait, one at a time while
they keep the interpreter busy (``--par-thread-concurrency``).

With ``--par-timeout`` (``limits``), a test past the limit is reported failed and its
thread left running: it no longer takes part in tearing down what it shares.
"""
