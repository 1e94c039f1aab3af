"""Jobs for tests/test_many.py that the spawned worker processes import (light: no test
module, no PyAV, no Dask)."""
import os


class DyingJob:
    """A `minimovinet.apps.workers` job whose worker process dies on the item "die"."""

    def key(self):
        return "dying"

    def setup(self):
        return None

    def run(self, state, item):
        if item == "die":
            os._exit(9)                  # the worker process dies, as if killed
        return f"{item}: done"

    def failed(self, item, reason):
        return f"{item}: failed: {reason}"
