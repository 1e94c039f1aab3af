"""The README's quickstart, run as written.

The blocks are found by the HTML comment right before them (`<!-- readme-test: NAME -->`):

* ``quickstart``: the shell commands.  Each line runs in bash, unchanged, in a temporary
  directory where ``clip.mp4`` is a copy of ../shared/media/carving_ice_172.mp4, with
  ``$MINIMOVINET_HOME`` an empty temporary cache, the HTTP(S) proxy a closed port (no network)
  and this interpreter's ``bin`` first on PATH.  ``pip install`` needs the network and is
  checked instead (its extras exist in pyproject.toml and their packages are installed here,
  minimovinet from this checkout).
* ``quickstart-output``: must be exactly what ``minimovinet classify --sample`` printed, and its
  figures those of LiteRT's built-in kernels on the same frames.
* ``quickstart-python``: the Python example, run as a script in the same directory.
"""
import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from conftest import need  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLIP = "carving_ice_172.mp4"          # stands in for the README's clip.mp4


def block(name: str):
    """(language, text) of the fenced block right after ``<!-- readme-test: NAME -->``."""
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- readme-test: " + re.escape(name) + r" -->\n```(\w*)\n(.*?)\n```",
                      text, re.S)
    assert match, f"README.md has no fenced block after <!-- readme-test: {name} -->"
    return match.group(1), match.group(2)


@pytest.fixture(scope="module")
def workdir(shared_dir, tmp_path_factory):
    need("av", "PyAV is not installed: pip install 'minimovinet[video]'")
    work = tmp_path_factory.mktemp("readme")
    shutil.copyfile(shared_dir / "media" / CLIP, work / "clip.mp4")
    return work


@pytest.fixture(scope="module")
def env(workdir):
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, MINIMOVINET_HOME=str(workdir / "cache"),
               PATH=bindir + os.pathsep + os.environ.get("PATH", ""),
               http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",
               HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    env.pop("no_proxy", None)
    env.pop("NO_PROXY", None)
    assert shutil.which("minimovinet", path=env["PATH"]), \
        "the `minimovinet` command is not installed next to this interpreter (pip install -e .)"
    return env


def check_pip_install(line):
    """`pip install -e ".[a,b]"`: the extras exist and what they install is installed here."""
    words = shlex.split(line, comments=True)
    assert words[:3] == ["pip", "install", "-e"] and len(words) == 4, line
    target = re.fullmatch(r"\.(?:\[([\w,]+)\])?", words[3])
    assert target, f"the quickstart installs {words[3]!r}, expected the checkout ('.[extras]')"
    extras = target.group(1).split(",") if target.group(1) else []
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    import minimovinet
    assert Path(minimovinet.__file__).resolve().is_relative_to(ROOT), \
        "minimovinet is not installed from this checkout"
    for extra in extras:
        assert extra in project["optional-dependencies"], f"no extra {extra!r} in pyproject.toml"
        for requirement in project["optional-dependencies"][extra]:
            name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
            metadata.version(name)          # raises PackageNotFoundError when missing


def test_quickstart_commands_as_written(shared_dir, workdir, env):
    """On an empty cache and without network (the proxy is a closed port), the quickstart
    classifies the sample clip with the embedded model, with class names."""
    language, text = block("quickstart")
    assert language == "bash"
    lines = [line for line in text.splitlines() if line.strip()]
    kinds = [shlex.split(line, comments=True)[:2] for line in lines]
    assert kinds == [["pip", "install"], ["minimovinet", "classify"], ["minimovinet", "classify"]]
    check_pip_install(lines[0])
    assert not (workdir / "cache").exists(), "the quickstart must work on an empty cache"
    outputs = []
    for line in lines[1:]:
        done = subprocess.run(["bash", "-c", line], cwd=workdir, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        outputs.append(done.stdout)
    sample, clip = outputs
    _, shown = block("quickstart-output")
    assert sample.rstrip("\n") == shown, "the README's sample output is not what it prints"
    # clip.mp4 is a copy of the sample clip: the same figures under its own name
    assert clip.splitlines()[0].startswith("clip.mp4: ")
    assert clip.splitlines()[1:] == sample.splitlines()[1:]
    # and the figures it shows are the oracle's: LiteRT's built-in kernels on the same frames
    expected = litert_top5(shared_dir, workdir / "clip.mp4")
    printed = [re.match(r"\s*\d+\. (.*?)\s+(\d\.\d{4})$", line).groups()
               for line in shown.splitlines()[1:]]
    assert printed == [(label, f"{p:.4f}") for label, p in expected], (printed, expected)
    # the published check (official Raspberry Pi example test): top-1 "carving ice", >= 0.5
    assert printed[0][0] == "carving ice" and float(printed[0][1]) >= 0.5


def litert_top5(shared_dir, clip):
    """The top-5 (label, probability) of the official int8 model in LiteRT (built-in kernels)
    after the clip's frames at 5 fps, resized to 172x172, / 255, from zero states."""
    need("ai_edge_litert", "the README's figures are checked against LiteRT")
    import int8_support as S
    from minimovinet.apps.video import read_video, to_model_input
    stream = S.LiteRTStream(shared_dir / "models" / "movinet_a0_stream_k600_int8.tflite")
    for frame in read_video(clip, fps=5, size=(172, 172)):
        logits, _ = stream.step(to_model_input(frame))
    probabilities = S.softmax(logits)
    labels = S.read_labels(shared_dir)
    return [(labels[i], float(probabilities[i])) for i in np.argsort(-probabilities, kind="stable")[:5]]   # ties by class index, as printed


def test_quickstart_python_as_written(shared_dir, workdir, env):
    language, code = block("quickstart-python")
    assert language == "python"
    script = workdir / "quickstart.py"
    script.write_text(code + "\n")
    done = subprocess.run([sys.executable, str(script)], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    stepped, final = ast.literal_eval(lines[0]), ast.literal_eval(lines[1])
    assert stepped[0] == final and final[0] == "carving ice" and final[1] > 0.9
    assert len(lines) == 2 + 5                       # 22 frames at 5 fps, every fifth shown
    assert lines[-1].split()[:4] == ["4.00", "s", "carving", "ice"]
