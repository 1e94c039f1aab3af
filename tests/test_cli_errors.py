"""How the command line ends: a `MinimovinetError` or an OSError of the environment is one line
and exit 1, Ctrl-C 130, anything else a bug: its traceback, a request to report it and exit 3.
Needs neither ../shared nor the network (the failures are injected)."""
import errno
import subprocess
import sys
from pathlib import Path

import pytest

import minimovinet as mm
from minimovinet import cli
from minimovinet.apps import registry
from minimovinet.errors import ConfigError, SettingError

ROOT = Path(__file__).resolve().parents[1]


def run_main(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def failing(exc):
    def fail(*args, **kwargs):
        raise exc
    return fail


def test_bad_input_is_one_line_and_exit_1(capsys, tmp_path):
    code, out, err = run_main(capsys, "describe", tmp_path / "nothing.h5")
    assert (code, out) == (1, "")
    assert err == f"minimovinet describe: error: {tmp_path / 'nothing.h5'}: no such file\n"
    # a labels file that cannot be read: a FileError at its source, no longer a bare OSError
    code, out, err = run_main(capsys, "convert", tmp_path / "m.tflite", "--labels",
                              tmp_path / "labels.txt", "-o", tmp_path / "m.h5")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert f"cannot read the labels file {tmp_path / 'labels.txt'}: No such file" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_environment_os_errors_are_one_line(capsys, monkeypatch, number):
    error = OSError(number, {errno.ENOSPC: "No space left on device",
                             errno.EACCES: "Permission denied",
                             errno.EROFS: "Read-only file system"}[number], "/out/models.txt")
    monkeypatch.setattr(registry, "format_models", failing(error))
    code, out, err = run_main(capsys, "models")
    assert (code, out) == (1, "")
    assert err == f"minimovinet models: error: /out/models.txt: {error.strerror}\n"


@pytest.mark.parametrize("bug", [ZeroDivisionError("division by zero"),
                                 KeyError("params"), TypeError("an internal mix-up"),
                                 ValueError("a bare ValueError"),
                                 FileNotFoundError(errno.ENOENT, "No such file", "/tmp/x")])
def test_internal_errors_show_the_traceback_and_ask_for_a_report(capsys, monkeypatch, bug):
    monkeypatch.setattr(registry, "format_models", failing(bug))
    code, out, err = run_main(capsys, "models")
    assert (code, out) == (cli.EXIT_INTERNAL_ERROR, "") and code == 3
    lines = err.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert f"{type(bug).__name__}: " in err and "in format_models" not in err   # the fake
    assert "in fail" in err                              # the frame that raised is shown
    assert lines[-1].startswith(f"minimovinet models: internal error: this is a bug in "
                                f"minimovinet {mm.__version__}")
    assert "report it to the minimovinet project" in lines[-1]
    assert lines[-1].endswith("the command line: minimovinet models")


def test_the_report_quotes_the_command_line(capsys, monkeypatch):
    monkeypatch.setattr(cli, "cmd_describe", failing(ZeroDivisionError()))   # bound at parse
    code, _, err = run_main(capsys, "describe", "my model.h5", "--height", "96")
    assert code == 3
    assert err.splitlines()[-1].endswith(
        "the command line: minimovinet describe 'my model.h5' --height 96")


def test_ctrl_c_is_130_and_a_broken_pipe_is_left_to_the_entry_point(capsys, monkeypatch):
    monkeypatch.setattr(registry, "format_models", failing(KeyboardInterrupt()))
    assert run_main(capsys, "models") == (130, "", "minimovinet models: interrupted\n")
    monkeypatch.setattr(registry, "format_models", failing(BrokenPipeError(errno.EPIPE, "pipe")))
    with pytest.raises(BrokenPipeError):
        cli.main(["models"])


def test_exit_codes_in_the_help(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out
    for code in ("0", "1", "2", "3", "130"):
        assert f"\n  {code} " in out
    assert "an internal error: a bug in minimovinet" in out


def test_the_process_exit_code_of_a_bug():
    script = ("import sys\n"
              "from minimovinet.apps import registry\n"
              "registry.format_models = lambda *a, **k: 1 / 0\n"
              "from minimovinet.cli import entry_point\n"
              "sys.argv = ['minimovinet', 'models']\n"
              "sys.exit(entry_point())\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 3 and done.stdout == ""
    assert "ZeroDivisionError: division by zero" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("minimovinet models: internal error:")


def test_bad_settings_are_minimovinet_errors():
    """Raised at their source as the proper subclass (once bare ValueErrors, which the command
    line used to catch wholesale)."""
    with pytest.raises(ConfigError, match="num_classes must be >= 1"):
        mm.ModelConfig.from_variant("a0", "stream", num_classes=0)
    with pytest.raises(ConfigError, match="unknown variant"):
        mm.ModelConfig.from_variant("a0", "streaming")
    with pytest.raises(SettingError, match="threads must be in"):
        mm.set_num_threads(0)
