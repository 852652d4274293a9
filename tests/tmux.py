"""A small tmux driver for tests that run terminal mail clients (aerc, mutt, neomutt).

Each Tmux instance has its own tmux server on a private socket in its work
directory (tmux -S WORKDIR/tmux.sock), so parallel tests never share a
session and the user's own tmux server is never touched.

    from tests.tmux import tmux_session  # noqa: F401

    def test_something(tmux_session, tmp_path):
        term = tmux_session(["aerc"], env={...})
        term.wait_for("Connected")
        term.keys(":quit", literal=True)
        term.keys("Enter")

The program runs under `env -i` with exactly env (default: this process's
environment), plus TERM=screen-256color unless env sets TERM, and
LANG=C.UTF-8 unless it sets LANG.  wait_for() nudges the window size now
and then, since aerc 0.14 sometimes misses a repaint; nudge() does it at once.
"""

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time

import pytest


class Tmux:
    """One tmux server with one session running one program."""

    SESSION = "test"

    def __init__(self, workdir, width=200, height=50, env=None):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.socket = os.path.join(self.workdir, "tmux.sock")
        self._tempdir = None
        if len(self.socket) > 100:  # a unix socket path is limited to 108 bytes
            self._tempdir = tempfile.mkdtemp(prefix="tmux-")
            self.socket = os.path.join(self._tempdir, "tmux.sock")
        self.width = width
        self.height = height
        self.env = dict(os.environ if env is None else env)
        if env is None or "TERM" not in env:  # what a program inside tmux should believe it runs on
            self.env["TERM"] = "screen-256color"
        self.env.setdefault("LANG", "C.UTF-8")  # curses clients draw UTF-8 only with a UTF-8 locale
        self.started = False
        self._last = ""

    def _tmux(self, *args, check=True, timeout=30):
        result = subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True,
                                timeout=timeout, env=self._tmux_env())
        if check and result.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed ({result.returncode}): "
                                 f"{result.stderr.decode(errors='replace').strip()}")
        return result

    def _tmux_env(self):
        env = dict(os.environ)
        env.pop("TMUX", None)  # never talk to an enclosing tmux
        env.setdefault("TERM", "xterm-256color")
        return env

    def start(self, argv, cwd=None):
        """Start a detached session running argv (a list, or a shell command line) with this instance's
        environment.

        The program runs under `env -i` with exactly self.env, so nothing of
        the test runner's environment leaks in unless it is in env.  The
        pane stays open after the program exits and shows "EXITED rc=N".
        """
        if isinstance(argv, str):  # a command line: the shell splits it
            argv = ["sh", "-c", argv]
        env_words = ["env", "-i"] + [f"{key}={value}" for key, value in sorted(self.env.items())]
        command = " ".join(shlex.quote(word) for word in env_words + list(argv))
        command += '; echo "EXITED rc=$?"; sleep 86400'
        self._tmux("-f", "/dev/null", "new-session", "-d", "-s", self.SESSION,
                   "-x", str(self.width), "-y", str(self.height),
                   "-c", str(cwd or self.workdir), "sh", "-c", command)
        self.started = True
        return self

    def keys(self, *keys, literal=False):
        """send-keys: key names (Enter, Escape, C-x, Tab, ...) or, with literal=True, text."""
        if not keys:
            return
        args = ["send-keys", "-t", self.SESSION]
        if literal:
            args.append("-l")
        self._tmux(*args, *keys)

    def screen(self):
        """The visible pane as text."""
        result = self._tmux("capture-pane", "-p", "-t", self.SESSION, check=False)
        if result.returncode == 0:
            self._last = result.stdout.decode("utf-8", "replace")
        return self._last

    def nudge(self):
        """Resize back and forth: makes a client that missed a repaint draw again."""
        self._tmux("resize-window", "-t", self.SESSION, "-x", str(self.width + 1), "-y", str(self.height),
                   check=False)
        time.sleep(0.1)
        self._tmux("resize-window", "-t", self.SESSION, "-x", str(self.width), "-y", str(self.height),
                   check=False)

    def wait_for(self, pattern, timeout=30):
        """Poll the screen until the regex (or plain substring) appears; return the screen."""
        if isinstance(pattern, str):
            try:
                regex = re.compile(pattern)
            except re.error:
                regex = re.compile(re.escape(pattern))
        else:
            regex = pattern
        start = time.monotonic()
        deadline = start + timeout
        next_nudge = start + 2
        while True:
            text = self.screen()
            if regex.search(text) or (isinstance(pattern, str) and pattern in text):
                return text
            now = time.monotonic()
            if now >= deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {pattern!r}; "
                                     f"last screen:\n{text}")
            if now >= next_nudge:  # a repaint a client missed (aerc 0.14 does) must not fail a test
                self.nudge()
                next_nudge = now + 4
            time.sleep(0.1)

    def close(self):
        """Kill this instance's tmux server (and the program in it)."""
        if os.path.exists(self.socket):
            self._tmux("kill-server", check=False)
        if self._tempdir:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None
        self.started = False


@pytest.fixture
def tmux_session(tmp_path):
    """A factory make(argv, env=None, cwd=None) -> Tmux; every session is closed at teardown."""
    from tests.conftest import need

    need("tmux")  # the Makefile installs it: its absence is an error, not a skip
    sessions = []

    def make(argv, env=None, cwd=None):
        workdir = tmp_path / f"tmux-{len(sessions)}"
        term = Tmux(workdir, env=env)
        sessions.append(term)
        return term.start(argv, cwd=cwd)

    yield make
    for term in sessions:
        term.close()
