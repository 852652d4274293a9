"""Every program: --help with an example and the exit codes, usage errors, installed on PATH."""

import os
import subprocess
import sys

import pytest

from tests.conftest import PROGRAMS, REPO, message, run

ALL = sorted(PROGRAMS)


@pytest.mark.parametrize("program", ALL)
def test_help_has_example_and_exit_codes(program):
    result = run(program, "--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    assert "Examples:" in text and program.split()[0] in text.split("Examples:")[1]
    assert "Exit codes:" in text
    assert " 64  wrong command-line usage" in text
    assert " 70  internal error" in text


def test_verify_help_lists_every_verdict():
    text = run("smime-verify", "--help").stdout.decode()
    for code, verdict in enumerate(["trusted", "untrusted", "mismatch", "expired", "changed", "bad", "unsigned"]):
        assert f"  {code}  {verdict}:" in text


@pytest.mark.parametrize("program", ALL)
def test_unknown_switch_is_a_usage_error_on_stderr(program):
    result = run(program, "--no-such-switch")
    assert result.returncode == 64
    assert result.stdout == b""
    assert b"--no-such-switch" in result.stderr and b"--help" in result.stderr


def test_missing_input_file(home):
    result = home.run("smime-verify", "/nonexistent/message.eml")
    assert result.returncode == 42 and b"cannot read /nonexistent/message.eml" in result.stderr


def test_input_from_file_argument(alice, tmp_path):
    (tmp_path / "m.eml").write_bytes(message())
    signed = alice.ok("smime-sign", "--passphrase-file", alice.passfile, tmp_path / "m.eml")
    (tmp_path / "s.eml").write_bytes(signed)
    assert alice.run("smime-verify", tmp_path / "s.eml").returncode == 0


def test_trust_without_subcommand_shows_help():
    result = run("smime-trust")
    assert result.returncode == 64 and b"identity" in result.stdout


@pytest.mark.parametrize("program", ALL)
def test_installed_programs_are_on_path(program):
    """`pip install -e .` (make venv) put every program beside the interpreter."""
    venv_bin = os.path.join(REPO, ".venv", "bin")
    path = os.path.join(venv_bin, program)
    assert os.access(path, os.X_OK), f"{path} is missing: run make venv"
    env = dict(os.environ, PATH=venv_bin + os.pathsep + os.environ.get("PATH", ""))
    result = subprocess.run([program, "--help"], capture_output=True, env=env, cwd="/")
    assert result.returncode == 0 and b"Exit codes:" in result.stdout


def test_programs_run_straight_from_a_checkout(tmp_path, home):
    """A filter started by path from a checkout finds the library next to it.

    Its shebang is `/usr/bin/env python3`: any python3 with the dependencies
    (here the test's own, first on PATH as in an activated virtualenv).
    """
    env = dict(home.env, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    result = subprocess.run([os.path.join(REPO, "filters", "smime-verify"), "--json"], input=message(),
                            capture_output=True, env=env, cwd=str(tmp_path))
    assert result.returncode == 6, result.stderr
    assert b'"verdict": "unsigned"' in result.stdout


def test_internal_errors_are_one_line(home, tmp_path):
    # a key file replaced by garbage behind mailseal's back is not a crash
    from tests import pki

    person = pki.CA().issue("zed@example.org")
    home.import_identity(person, tmp_path, unprotected=True)
    keys = os.path.join(home.path, "keys")
    with open(os.path.join(keys, os.listdir(keys)[0]), "wb") as handle:
        handle.write(b"garbage")
    result = home.run("smime-sign", input=message(frm="zed@example.org"))
    assert result.returncode != 0
    assert b"Traceback" not in result.stderr
    assert len(result.stderr.decode().strip().splitlines()) == 1
