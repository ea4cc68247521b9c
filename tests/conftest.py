"""Settings for the whole suite.

Hypothesis keeps its example database and caches in ``.hypothesis/`` under the working
directory; the suite keeps them in a temporary directory instead, so that no test writes into
the checkout (CI runs on a fresh clone, where a database would only slow the first run).
"""

from __future__ import annotations

import tempfile

from hypothesis.configuration import set_hypothesis_home_dir

set_hypothesis_home_dir(tempfile.mkdtemp(prefix="hypothesis-"))
