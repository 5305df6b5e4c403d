"""What a run shows of itself while and after it runs: the live progress in the terminal, the
timeline page (``--par-report``) and the trace (``--par-trace``). Beside the runners; imports
from neither: the controllers tell the run's view what only they know (which worker a result
came from, what each worker is running now)."""
