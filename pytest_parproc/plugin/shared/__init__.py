"""Run-once session fixtures (``@shared_fixture``, ini ``parproc_shared``, ``--par-shared``).

- **Which** (``marking``, ``plan``): the shared fixtures in the closures of the selected tests,
  one value per parameter, and the check that none depends on anything narrower.
- **Set-up** (``main``): before any test, in the main process, through pytest's own fixture
  machinery (so ``--setup-show``, capture and plugins' fixture hooks behave as serially), each
  value once, bounded by ``--par-timeout``. The values are then taken off pytest's
  ``FixtureDef`` (which holds one value, and whose teardown a fork would otherwise inherit).
- **Use** (``instances``, ``worker``): a plugin in every process answers
  ``pytest_fixture_setup`` for shared fixtures with the main process's value or error, so each
  dependent test gets what a serial run's would. Forked workers inherit the values; other
  workers get them pickled once (from the run directory); threads share the objects.
- **Teardown** (``main``): newest first, once, after every worker has ended its session, also
  after ``-x``, Ctrl-C and crashes; an error is reported on the last test's teardown.
"""
