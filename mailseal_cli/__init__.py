"""What every mailseal program shares: plumbum.cli scaffolding, nothing more.

The library (mailseal/) has no command-line code; the programs in
filters/, hooks/ and bin/ are thin subclasses of Program.  Program turns
library errors into one line on stderr and the error's exit code, sends
usage errors to stderr (never stdout: it may be a message stream) with exit
code 64, and formats --help with an example and the exit codes.
"""

import contextlib
import os
import sys

from plumbum import cli
from plumbum.cli.application import ShowCompletion, ShowHelp, ShowHelpAll, ShowVersion
from plumbum.cli.switches import SwitchError

import mailseal
from mailseal.errors import ERROR_EXITS, USAGE_EXIT, MailsealError


class UsageError(Exception):
    """Wrong command-line usage (raised past plumbum so it cannot print to stdout)."""


def exit_code_text(extra=()):
    """The 'Exit codes' part of a --help text."""
    lines = [f"/{code:>3}  {text}" for code, text in list(extra) + ERROR_EXITS]
    return "Exit codes:\n" + "\n".join(lines)


class Program(cli.Application):
    """Base of every mailseal program."""

    VERSION = mailseal.__version__
    EXAMPLES = ""  # shown under "Examples:" in --help
    EXIT_CODES = [(0, "success")]  # program-specific codes, before the common ones
    JSON_TO_STDERR = False  # True where stdout carries the message

    def __init__(self, executable):
        super().__init__(executable)
        examples = "\n".join("/" + line for line in self.EXAMPLES.strip().splitlines())
        self.DESCRIPTION_MORE = (f"Examples:\n{examples}\n\n" if examples else "") + exit_code_text(self.EXIT_CODES)

    # usage errors go to stderr with code 64, not to stdout with code 2
    def _parse_args(self, argv):
        try:
            return super()._parse_args(argv)
        except (ShowHelp, ShowHelpAll, ShowVersion, ShowCompletion):
            raise
        except SwitchError as exc:
            raise UsageError(str(exc)) from None

    def _validate_args(self, swfuncs, tailargs):
        try:
            return super()._validate_args(swfuncs, tailargs)
        except (ShowHelp, ShowHelpAll, ShowVersion, ShowCompletion):
            raise
        except SwitchError as exc:
            raise UsageError(str(exc)) from None

    @classmethod
    def run(cls, argv=None, exit=True):  # noqa: A002 - plumbum's signature
        argv = list(sys.argv if argv is None else argv)
        name = os.path.basename(argv[0]) if argv else cls.__name__
        try:
            return super().run(argv, exit=exit)
        except UsageError as exc:
            print(f"{name}: {exc} (see {name} --help)", file=sys.stderr)
            if exit:
                sys.exit(USAGE_EXIT)
            return None, USAGE_EXIT

    def main(self, *args):
        try:
            return self.go(*args) or 0
        except MailsealError as exc:
            self.fail(exc)
            return exc.exit_code
        except UsageError as exc:
            print(f"{self.PROGNAME}: {exc} (see {self.PROGNAME} --help)", file=sys.stderr)
            return USAGE_EXIT
        except KeyboardInterrupt:
            print(f"{self.PROGNAME}: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:
            return 0
        except Exception as exc:  # a bug: say so in one line, details on request
            if os.environ.get("MAILSEAL_DEBUG"):
                raise
            print(f"{self.PROGNAME}: internal error: {type(exc).__name__}: {exc}"
                  " (set MAILSEAL_DEBUG=1 for a traceback)", file=sys.stderr)
            return 70

    def go(self, *args):
        raise NotImplementedError

    def fail(self, exc):
        """Report a library error: one line on stderr (and JSON on stdout with --json)."""
        print(f"{self.PROGNAME}: {exc.one_line()}", file=sys.stderr)
        blocked = getattr(exc, "blocked", [])
        for address, reason in blocked:
            print(f"{self.PROGNAME}:   {address}: {reason}", file=sys.stderr)
        if getattr(self, "json", False) is True:
            report = {"error": exc.kind, "message": exc.one_line(), "exit_code": exc.exit_code}
            if blocked:
                report["blocked"] = [{"address": a, "reason": r} for a, r in blocked]
            if self.JSON_TO_STDERR:
                import json

                print(json.dumps(report, ensure_ascii=False), file=sys.stderr)
            else:
                self.print_json(report)

    # -- helpers ----------------------------------------------------------

    def read_input(self, path=None):
        """The message: from path, or from stdin."""
        with self.open_input(path) as handle:
            return handle.read()

    @contextlib.contextmanager
    def open_input(self, path=None):
        """The message as a binary file: path, or stdin."""
        from mailseal.errors import FileProblem

        if path and path != "-":
            try:
                handle = open(path, "rb")
            except OSError as exc:
                raise FileProblem(f"cannot read {path}: {exc.strerror}") from None
            with handle:
                try:
                    yield handle
                except OSError as exc:
                    raise FileProblem(f"cannot read {path}: {exc.strerror}") from None
            return
        if getattr(self, "passphrase_fd", None) == 0:
            raise UsageError("--passphrase-fd 0 reads the passphrase from stdin, so give the message as a FILE")
        yield sys.stdin.buffer

    @staticmethod
    def write(data):
        """Write bytes, or a sequence of byte chunks, to stdout."""
        from mailseal.mime import flat

        out = sys.stdout.buffer
        for chunk in ([data] if isinstance(data, (bytes, bytearray)) else flat(data)):
            out.write(chunk)
        out.flush()

    @staticmethod
    def print_json(obj):
        import json

        sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()

    def store(self, create=True):
        from mailseal.store import Store

        return Store(create=create)

    def config(self):
        from mailseal import config

        return config.load()


class PassphraseSwitches:
    """--passphrase-fd / --passphrase-file for programs that unlock a key."""

    passphrase_fd = cli.SwitchAttr(["--passphrase-fd"], int, argname="N",
                                   help="read the key's passphrase (one line) from file descriptor N;"
                                        " mutt writes it on stdin: --passphrase-fd 0")
    passphrase_file = cli.SwitchAttr(["--passphrase-file"], str, argname="FILE",
                                     help="read the key's passphrase from the first line of FILE")

    def passphrase(self):
        from mailseal.passphrase import Passphrase

        return Passphrase(fd=self.passphrase_fd, file=self.passphrase_file)


def program_main(cls):
    """Run a Program class as a script."""
    cls.run()
