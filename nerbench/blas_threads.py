"""One BLAS thread for the process that imports this before numpy: `nerbench site build`.

The build forks its own worker, whose paired tests multiply tall, thin matrices (10,000 resamples
by five columns): OpenBLAS's second thread doubled their CPU time without making them any faster
(3.0 s of CPU for 3.0 s against 4.9 s for 2.9 s, 10,000 submissions) and took the CPU that the other
process was writing pages on. OpenBLAS reads the setting once, when numpy loads, so this module is
imported before anything that imports numpy (nerbench.cli.site_cmd does); a value already set is kept.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
