"""The loky-style process pool: manager thread, worker handles, worker process, reuse."""
