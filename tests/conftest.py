"""Fixtures: real programs from the checkout, a private MAILSEAL_HOME per test, test PKIs."""

import os
import shutil
import subprocess
import sys

import pytest

from tests import pki

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "tests", "data")
TB = os.path.join(DATA, "thunderbird", "mailnews", "test", "data", "smime")
TB_INTEROP = os.path.join(DATA, "thunderbird", "mailnews", "test", "data", "smime-interop")
TB_MANUAL = os.path.join(DATA, "thunderbird", "mailnews", "test", "data", "smime-manual")
TB_BROWSER = os.path.join(DATA, "thunderbird", "mail", "test", "browser", "smime", "data")
def _python_programs():
    found = {}
    for folder in ("filters", "bin", "hooks"):
        for name in sorted(os.listdir(os.path.join(REPO, folder))):
            path = os.path.join(REPO, folder, name)
            if os.access(path, os.X_OK):
                with open(path, "rb") as handle:
                    if b"python" in handle.readline():
                        found[name] = path
    return found


#: every Python program of the checkout (filters/, bin/, hooks/), by name
PROGRAMS = _python_programs()


def tb(name):
    for directory in (TB, TB_INTEROP, TB_MANUAL, TB_BROWSER):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(name)


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def run(program, *args, input=b"", env=None, cwd=None, timeout=300):
    """Run a mailseal program from the checkout with the test interpreter."""
    command = [sys.executable, PROGRAMS[program], *map(str, args)]
    return subprocess.run(command, input=input, capture_output=True, env=env, cwd=cwd, timeout=timeout)


class Home:
    """A MAILSEAL_HOME (and config file) of its own, for one user."""

    def __init__(self, path):
        self.path = str(path)
        os.makedirs(self.path, exist_ok=True)
        self.config = os.path.join(self.path, "config.toml")
        self.passfile = os.path.join(self.path, "passphrase")
        with open(self.passfile, "w") as handle:
            handle.write("secret\n")

    @property
    def env(self):
        env = dict(os.environ)
        env["MAILSEAL_HOME"] = self.path
        env["MAILSEAL_CONFIG"] = self.config
        env.pop("MAILSEAL_DEBUG", None)
        return env

    def run(self, program, *args, input=b"", **kw):
        return run(program, *args, input=input, env=self.env, **kw)

    def ok(self, program, *args, input=b"", **kw):
        """Run and insist on exit code 0; return stdout."""
        result = self.run(program, *args, input=input, **kw)
        assert result.returncode == 0, (program, args, result.returncode, result.stderr.decode(errors="replace"))
        return result.stdout

    def import_identity(self, person, directory, unprotected=False, legacy=False):
        path = person.write(directory, legacy=legacy)
        args = ["identity", "import", "--passphrase-file", self.passfile, path]
        if unprotected:
            args.insert(2, "--unprotected")
        return self.ok("smime-trust", *args)

    def install(self, pem_bytes, directory, name="cert.pem", ca=False):
        path = os.path.join(directory, name)
        with open(path, "wb") as handle:
            handle.write(pem_bytes)
        return self.ok("smime-trust", "install", *(["--ca"] if ca else []), path)

    def write_config(self, text):
        with open(self.config, "w") as handle:
            handle.write(text)

    def corrupt_database(self, garbage):
        """Overwrite trust.db (and drop its WAL files) with garbage."""
        db = os.path.join(self.path, "trust.db")
        for suffix in ("-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        with open(db, "wb") as handle:
            handle.write(garbage)


@pytest.fixture
def home(tmp_path):
    return Home(tmp_path / "home")


@pytest.fixture
def make_home(tmp_path):
    def factory(name):
        return Home(tmp_path / name)
    return factory


@pytest.fixture(scope="session")
def ca():
    return pki.CA()


@pytest.fixture(scope="session")
def people(ca):
    """alice, bob and carol, RSA identities issued by the session CA."""
    return {n: ca.issue(f"{n}@example.org") for n in ("alice", "bob", "carol")}


@pytest.fixture
def alice(home, ca, people, tmp_path):
    """Alice's home: her identity, the CA trusted, Bob's certificate installed."""
    home.import_identity(people["alice"], tmp_path)
    home.install(ca.pem(), tmp_path, "ca.pem", ca=True)
    home.install(people["bob"].cert_pem(), tmp_path, "bob-cert.pem")
    return home


@pytest.fixture
def bob(make_home, ca, people, tmp_path):
    """Bob's home: his identity and the CA trusted."""
    bob_home = make_home("bob")
    os.makedirs(tmp_path / "bobfiles", exist_ok=True)
    bob_home.import_identity(people["bob"], tmp_path / "bobfiles")
    bob_home.install(ca.pem(), tmp_path / "bobfiles", "ca.pem", ca=True)
    return bob_home


def message(frm="alice@example.org", to="bob@example.org", body="Hello Bob,\n\nthe plan stands.\n\nAlice\n",
            subject="The plan", extra_headers="", cc=None):
    """A plain text message (LF line endings, as mail clients hand it over)."""
    head = f"From: Alice <{frm}>\nTo: {to}\n" + (f"Cc: {cc}\n" if cc else "")
    head += f"Subject: {subject}\nDate: Mon, 02 Nov 2026 10:00:00 +0000\nMessage-ID: <plan-1@example.org>\n"
    head += extra_headers
    head += "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n"
    return (head + "\n" + body).encode()


def need(tool):
    """The path of a peer tool; the Makefile installs it, so absence is an error."""
    path = shutil.which(tool)
    assert path, f"{tool} is missing: run 'make deps' (the Makefile installs every peer)"
    return path
