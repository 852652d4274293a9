"""Errors every mailseal program can report, each with its own exit code.

A program catches MailsealError, prints its one-line message and exits with
its code, so scripts can tell "not a mail message" from "wrong passphrase"
without parsing text.  The numbers are part of the interface: they are
listed in every program's --help and in README.md.
"""


class MailsealError(Exception):
    """Base class: a clear, one-line, user-facing error."""

    exit_code = 70
    kind = "error"

    def __init__(self, message, *, hint=None):
        super().__init__(message)
        self.hint = hint

    def one_line(self):
        text = str(self)
        if self.hint:
            text += f" ({self.hint})"
        return " ".join(text.split())


class NotAMessage(MailsealError):
    """Input is empty, has no header block or its MIME structure is broken."""

    exit_code = 10
    kind = "not-a-message"


class BadEncoding(MailsealError):
    """A base64 or quoted-printable body cannot be decoded (often truncated)."""

    exit_code = 11
    kind = "bad-encoding"


class MalformedCMS(MailsealError):
    """The CMS (PKCS#7) structure cannot be parsed: garbage or truncated."""

    exit_code = 12
    kind = "malformed-cms"


class Unsupported(MailsealError):
    """A valid structure that uses an algorithm or form we do not handle."""

    exit_code = 13
    kind = "unsupported"


class NotForUs(MailsealError):
    """No RecipientInfo matches any key we hold, current or historical."""

    exit_code = 20
    kind = "not-a-recipient"


class NotEncrypted(MailsealError):
    """smime-decrypt was given a message that is not encrypted."""

    exit_code = 24
    kind = "not-encrypted"


class PassphraseNeeded(MailsealError):
    """A protected key must be unlocked and no passphrase source was given."""

    exit_code = 21
    kind = "passphrase-needed"


class WrongPassphrase(MailsealError):
    """The passphrase did not unlock the key or the PKCS#12 file."""

    exit_code = 22
    kind = "wrong-passphrase"


class DecryptionFailed(MailsealError):
    """The content did not decrypt: tampered ciphertext, or a failed tag."""

    exit_code = 23
    kind = "decryption-failed"


class RecipientsBlocked(MailsealError):
    """Encryption was required and some recipients have no usable certificate."""

    exit_code = 30
    kind = "recipients-blocked"

    def __init__(self, blocked):
        self.blocked = list(blocked)  # [(address, reason), ...]
        names = ", ".join(addr for addr, _ in self.blocked)
        super().__init__(f"cannot encrypt to {names}: nothing was written")


class NoIdentity(MailsealError):
    """No own identity can sign for this address."""

    exit_code = 31
    kind = "no-identity"


class DatabaseError(MailsealError):
    """The trust database is locked, corrupt or unreadable."""

    exit_code = 40
    kind = "database"


class ConfigError(MailsealError):
    """The configuration file is malformed (the message names file and line)."""

    exit_code = 41
    kind = "config"


class FileProblem(MailsealError):
    """A file named on the command line cannot be read or written."""

    exit_code = 42
    kind = "file"


class NotFound(MailsealError):
    """A certificate, address or identity the user named is not on record."""

    exit_code = 44
    kind = "not-found"


class LimitExceeded(MailsealError):
    """The input exceeds a safety bound (nesting depth, part count, size)."""

    exit_code = 43
    kind = "limit"


class DirectoryUnavailable(MailsealError):
    """The directory (LDAP) could not be searched: down, too slow, refused the credentials."""

    exit_code = 45
    kind = "directory"


class SendFailed(MailsealError):
    """The real sendmail refused or failed; its own message is passed on."""

    exit_code = 46
    kind = "send"


USAGE_EXIT = 64

#: (code, meaning) for --help texts and README.md
ERROR_EXITS = [
    (NotAMessage.exit_code, "input is empty or not a mail message"),
    (BadEncoding.exit_code, "a base64 or quoted-printable body is broken (truncated?)"),
    (MalformedCMS.exit_code, "the CMS/PKCS#7 data is garbage or truncated"),
    (Unsupported.exit_code, "an algorithm or structure mailseal does not handle"),
    (NotForUs.exit_code, "the message is not encrypted to any of your keys"),
    (PassphraseNeeded.exit_code, "a passphrase is needed and none was given"),
    (WrongPassphrase.exit_code, "the passphrase is wrong"),
    (DecryptionFailed.exit_code, "decryption failed: the message was altered"),
    (NotEncrypted.exit_code, "the message is not encrypted"),
    (RecipientsBlocked.exit_code, "a recipient has no usable certificate; nothing written"),
    (NoIdentity.exit_code, "no identity of yours can sign for the sender"),
    (DatabaseError.exit_code, "the trust database is locked, corrupt or unreadable"),
    (ConfigError.exit_code, "the configuration file is malformed"),
    (FileProblem.exit_code, "a file cannot be read or written"),
    (LimitExceeded.exit_code, "the input exceeds a safety limit"),
    (NotFound.exit_code, "the certificate or address is not on record"),
    (DirectoryUnavailable.exit_code, "the directory (LDAP) cannot be searched"),
    (SendFailed.exit_code, "the real sendmail failed (smime-sendmail)"),
    (USAGE_EXIT, "wrong command-line usage"),
    (70, "internal error (a bug: please report it)"),
]
