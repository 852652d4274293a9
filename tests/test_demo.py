"""`make demo` runs examples/demo.sh: it must work and print the verdicts."""

import os
import subprocess

from tests.conftest import REPO


def test_demo_runs_and_prints_verdicts():
    env = dict(os.environ, PATH=os.path.join(REPO, ".venv", "bin") + os.pathsep + os.environ["PATH"])
    env.pop("MAILSEAL_HOME", None)
    result = subprocess.run(["sh", os.path.join(REPO, "examples", "demo.sh")], capture_output=True, env=env,
                            timeout=300)
    out = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, out
    assert "✓ trusted: signed by alice@example.org" in out
    assert "encrypted (AES-256-CBC)" in out
    assert "carol@example.org: no certificate on record" in out and "exit code 30, and 0 bytes" in out
    assert "shall we try the new place on Thursday? Grüße, Alice" in out  # --display decodes the text
    assert "✗ bad" in out and "exit code 5 (5 = bad)" in out
