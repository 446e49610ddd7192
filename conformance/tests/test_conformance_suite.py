"""The reference vgi-rpc conformance suite, collected here so `conftest.py` applies.

vgi-rpc ships its canonical pytest suite inside the package precisely so that
other implementations can run it; re-exporting the test classes from a module
in this directory is what makes pytest use our fixtures (which launch the Rust
worker) instead of the reference repository's in-process ones.
"""

from vgi_rpc.conformance._pytest_suite import *  # noqa: F403
