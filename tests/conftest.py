"""Shared test fixtures.  `oracle.py` (official TensorFlow models) is imported lazily so that the
TF-free tests run without TensorFlow."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED = TESTS.parent.parent / "shared"

# Strict mode (CI, and the project's test command tools/run_tests.sh): what the test command
# installs (TensorFlow, the Model Garden, LiteRT, PyAV) and ../shared must be there, so a test
# that would skip for lack of them fails instead.  A skip that strict mode accepts says why it
# is expected on this machine: its reason starts with EXPECTED (e.g. a CPU without VNNI).
STRICT = (os.environ.get("MINIMOVINET_STRICT_TESTS", "") == "1"
          or os.environ.get("CI", "").lower() in ("1", "true", "yes"))
EXPECTED = "[expected here] "


def missing(reason: str):
    """Skip for lack of an oracle, a package or ../shared; fail in strict mode."""
    if STRICT:
        pytest.fail(f"{reason} -- required in strict mode (CI / tools/run_tests.sh)",
                    pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def need(module: str, reason: str = ""):
    """`pytest.importorskip` that fails in strict mode."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as e:
        missing(f"{module} is not importable ({e}){': ' + reason if reason else ''}")


def need_tensorflow(reason: str):
    """TensorFlow (returned) with the Model Garden: the one guard of every test that needs the
    official implementation or the TFLite converter (fails in strict mode when missing)."""
    tf = need("tensorflow", reason)
    need("tf_keras", reason)
    need("official.projects.movinet.modeling.movinet", reason)
    return tf


def expected_skip(reason: str):
    """A skip that is right on this machine (strict mode accepts it)."""
    pytest.skip(EXPECTED + reason)


@pytest.fixture(scope="session")
def shared_dir():
    if not (SHARED / "README.md").exists():
        missing(f"../shared is absent ({SHARED}): the official TFLite model, labels and "
                f"clips are not available on this checkout")
    return SHARED


_unexpected_skips = []


def _controller(config) -> bool:
    return not hasattr(config, "workerinput")      # pytest-xdist workers report to it


def pytest_runtest_logreport(report):
    # an xfail (a documented known difference, with its reason) is reported as skipped too
    if report.skipped and STRICT and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if EXPECTED not in reason:
            _unexpected_skips.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    if STRICT and _unexpected_skips and exitstatus == 0 and _controller(session.config):
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if STRICT and _unexpected_skips:
        terminalreporter.write_line(
            f"strict mode: {len(_unexpected_skips)} test(s) skipped for a reason CI should "
            f"never have (the run fails):", red=True)
        for line in _unexpected_skips:
            terminalreporter.write_line(f"  {line}", red=True)


def random_params(cfg, seed=0):
    from minimovinet.float32.params import random_params as make
    return make(cfg, seed)


def random_model(model_id="a0", variant="stream", num_classes=10, seed=0):
    import minimovinet as mm
    cfg = mm.ModelConfig.from_variant(model_id, variant, num_classes=num_classes)
    return mm.Movinet(cfg, random_params(cfg, seed))


def relmax(a, b):
    """max |a - b| relative to max |a| (the tolerance measure used against the oracle)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.max(np.abs(a)) if a.size else 0.0
    return float(np.max(np.abs(a - b)) / scale) if scale > 0 else float(np.max(np.abs(a - b), initial=0))


MODEL_ORDER = ["a0", "a1", "a2", "a3", "a4", "a5"]
VARIANT_ORDER = ["stream", "base", "stream3d", "mobile"]


def _official_key(item):
    params = getattr(getattr(item, "callspec", None), "params", {})
    if params.get("model_id") in MODEL_ORDER and params.get("variant") in VARIANT_ORDER:
        return MODEL_ORDER.index(params["model_id"]), VARIANT_ORDER.index(params["variant"])
    return None


def _variant_of(item):
    """The official variant a test of tests/test_official_a*.py builds (the float32 noise
    floor builds a mobile model), or None."""
    if not item.fspath.basename.startswith("test_official_a"):
        return None
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "noise_floor" in item.name:
        return "mobile"
    return params.get("variant")


def pytest_collection_modifyitems(config, items):
    """Run the tests parametrized by (model_id, variant) last, grouped by model (within a file:
    with pytest-xdist, files are spread over the workers whole).  Within a per-model file
    (tests/test_official_a*.py) the tests of one variant run one after the other, so that
    each official model is built once (building A5 takes about a minute, and oracle keeps only
    the last two models)."""
    keyed = [item for item in items if _official_key(item) is not None]
    others = [item for item in items if _official_key(item) is None]
    keyed.sort(key=_official_key)            # stable: keeps file order within a model
    files = {}
    for i, item in enumerate(others):
        files.setdefault(item.fspath, []).append(i)
    for positions in files.values():
        group = [others[i] for i in positions]
        if any(_variant_of(item) for item in group):
            group.sort(key=lambda item: VARIANT_ORDER.index(_variant_of(item))
                       if _variant_of(item) in VARIANT_ORDER else -1)
            for i, item in zip(positions, group):
                others[i] = item
    items[:] = others + keyed
