"""Where the passphrase for a private key comes from, without ever prompting.

Filters run inside mail clients, so they never open a terminal prompt.  In
order: --passphrase-fd N / --passphrase-file F (mutt writes the passphrase
on stdin: --passphrase-fd 0), else the account's passphrase_command (e.g.
`pass show mail/smime`).  A key imported --unprotected needs none.  The
passphrase is read once, on first need, and is the first line of what the
source gives.
"""

import os

from .errors import FileProblem, PassphraseNeeded

HINT = ("give --passphrase-file FILE or --passphrase-fd N, or set passphrase_command for the account"
        " in config.toml, or import the key with --unprotected")


def _first_line(data):
    line = data.split(b"\n", 1)[0]
    return line[:-1] if line.endswith(b"\r") else line


class Passphrase:
    """A lazily read passphrase source."""

    def __init__(self, fd=None, file=None, command=None):
        self.fd = fd
        self.file = file
        self.command = command
        self._value = None

    @property
    def available(self):
        return self.fd is not None or self.file is not None or bool(self.command)

    def with_command(self, command):
        """This source, falling back to command when no fd or file was given."""
        if self.fd is not None or self.file is not None or not command:
            return self
        return Passphrase(command=command)

    def get(self, what="the key"):
        if self._value is not None:
            return self._value
        if self.fd is not None:
            self._value = self._read_fd(self.fd)
        elif self.file is not None:
            try:
                with open(self.file, "rb") as handle:
                    self._value = _first_line(handle.read())
            except OSError as exc:
                raise FileProblem(f"cannot read passphrase file {self.file}: {exc.strerror}") from None
        elif self.command:
            self._value = self._run(self.command)
        else:
            raise PassphraseNeeded(f"{what} is protected by a passphrase and none was given", hint=HINT)
        return self._value

    @staticmethod
    def _read_fd(fd):
        data = bytearray()
        try:
            while not data.endswith(b"\n"):
                chunk = os.read(fd, 1)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise FileProblem(f"cannot read the passphrase from file descriptor {fd}: {exc.strerror}") from None
        return _first_line(bytes(data))

    @staticmethod
    def _run(command):
        from plumbum import local
        from plumbum.commands import ProcessExecutionError

        try:
            out = local["sh"]["-c", command].run(retcode=0)[1]
        except ProcessExecutionError as exc:
            err = (exc.stderr or "").strip().splitlines()
            raise PassphraseNeeded(f"passphrase_command {command!r} failed with exit code {exc.retcode}"
                                   + (f": {err[-1]}" if err else "")) from None
        return _first_line(out.encode("utf-8", "surrogateescape"))
