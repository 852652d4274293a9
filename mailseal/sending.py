"""The sending policy: what smime-sendmail does to a message before the real sendmail sees it.

Per message it decides whether to sign and to encrypt, in this order of
strength: the per-message lock (an `X-Mailseal:` header the composer sets:
encrypt, no-encrypt, sign, no-sign), then "a reply to an encrypted message
is encrypted" (In-Reply-To / References looked up in mailseal's record of
messages that arrived encrypted, and in notmuch), then the account's
defaults.  The lock header never leaves the machine.  When the message must
be encrypted and any recipient cannot be encrypted to, nothing is sent:
the caller gets RecipientsBlocked naming each one.  Bcc recipients get
copies of their own, encrypted to them and the sender only, so no other
recipient can learn of them, not even from the encrypted part's
RecipientInfos.
"""

import re
from dataclasses import dataclass, field

from . import composing, mime
from .addresses import header_addresses, normalize
from .errors import MailsealError, NotAMessage, SendFailed

LOCK_HEADER = "X-Mailseal"
LOCK_WORDS = ("encrypt", "no-encrypt", "sign", "no-sign")
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")


@dataclass
class Plan:
    sign: bool
    encrypt: bool
    why: list = field(default_factory=list)  # how each was decided, for --json and --verbose


@dataclass
class Copy:
    """One message to hand to sendmail: its envelope recipients and its bytes."""

    recipients: list
    data: bytes
    bcc: bool = False


def lock_words(message):
    """The words of the X-Mailseal header(s); NotAMessage for a word that is not one of LOCK_WORDS."""
    words = []
    for value in message.get_all(LOCK_HEADER):
        for word in re.split(r"[\s,;]+", value.strip().lower()):
            if not word:
                continue
            if word not in LOCK_WORDS:
                raise NotAMessage(f"{LOCK_HEADER}: unknown word {word!r} (use {', '.join(LOCK_WORDS)});"
                                  " nothing was sent")
            words.append(word)
    for yes in ("encrypt", "sign"):
        if yes in words and "no-" + yes in words:
            raise NotAMessage(f"{LOCK_HEADER} says both {yes} and no-{yes}; nothing was sent")
    return words


def replied_to(message):
    """The Message-IDs a message answers or forwards (In-Reply-To, References)."""
    ids = []
    for name in ("In-Reply-To", "References"):
        for value in message.get_all(name):
            ids += [i for i in _MESSAGE_ID.findall(value) if i not in ids]
    return ids


def encrypted_originals(store, ids, notmuch=True):
    """Which of these Message-IDs arrived encrypted: mailseal's record, then notmuch's database."""
    found = store.was_encrypted(ids)
    rest = [i for i in ids if i not in found]
    if rest and notmuch:
        found += _encrypted_in_notmuch(rest)
    return found


def _encrypted_in_notmuch(ids):
    """The ids whose message in the notmuch database is S/MIME-encrypted (no database: none)."""
    import os

    if not (os.environ.get("NOTMUCH_CONFIG") or os.path.exists(os.path.expanduser("~/.notmuch-config"))):
        return []
    try:
        import notmuch2
    except ImportError:
        return []
    from .reading import smime_kind

    found = []
    try:
        with notmuch2.Database(mode=notmuch2.Database.MODE.READ_ONLY) as db:
            for message_id in ids:
                try:
                    message = db.find(message_id.strip("<>"))
                except LookupError:
                    continue
                if "smime-encrypted" in message.tags:
                    found.append(message_id)
                    continue
                with open(message.path, "rb") as handle:
                    head = handle.read(1 << 16)
                try:
                    if smime_kind(mime.parse_message(head)) == "enveloped":
                        found.append(message_id)
                except MailsealError:
                    continue
    except (notmuch2.NotmuchError, OSError):
        return found
    return found


def decide(message, account, store, *, notmuch=True):
    """The Plan for a message: the lock, then replies to encrypted mail, then the account's defaults."""
    sign = bool(account and account.sign_by_default)
    encrypt = bool(account and account.encrypt_by_default)
    why = [f"account {account.name}: sign {'on' if sign else 'off'}, encrypt {'on' if encrypt else 'off'}"
           if account else "no account for the From address: neither signed nor encrypted by default"]
    originals = encrypted_originals(store, replied_to(message), notmuch=notmuch)
    if originals and not encrypt:
        encrypt = True
        why.append(f"encrypted: it answers {originals[0]}, which came encrypted")
    for word in lock_words(message):
        if word == "encrypt":
            encrypt = True
        elif word == "no-encrypt":
            encrypt = False
        elif word == "sign":
            sign = True
        else:
            sign = False
        why.append(f"{LOCK_HEADER}: {word}")
    return Plan(sign, encrypt, why)


def without_fields(message, names):
    """The message's bytes without the named header fields (the rest byte for byte)."""
    names = {n.lower() for n in names}
    kept = b"".join(h.raw if h.raw.endswith(b"\n") else h.raw + message.eol
                    for h in message.headers if h.lname not in names)
    return kept + message.eol + message.raw[message.body_start:]


def prepare(raw, envelope, config, store, passphrase, *, notmuch=True):
    """(Plan, [Copy]) for a message and the envelope recipients sendmail was given.

    envelope: the recipients from the command line; empty means the
    message's To, Cc and Bcc.  Nothing is signed or sent here; a copy for
    each Bcc recipient comes after the main one.  RecipientsBlocked when
    the message must be encrypted and anyone cannot be encrypted to.
    """
    message = mime.parse_message(raw)
    from_addrs = header_addresses(message, "From")
    sender = from_addrs[0] if from_addrs else None
    account = config.account_for(sender) if sender else None
    plan = decide(message, account, store, notmuch=notmuch)
    bcc = header_addresses(message, "Bcc")
    everyone = [normalize(a) for a in envelope] or header_addresses(message, "To", "Cc", "Bcc")
    main = [a for a in everyone if a not in bcc]
    hidden = [a for a in everyone if a in bcc]
    clean = without_fields(message, [LOCK_HEADER, "Bcc"])
    if plan.encrypt:
        # every copy's recipients are checked before anything is signed or sent
        composing.encryption_targets(store, config, sender, main + hidden)
    copies = []
    for recipients, is_bcc in ([(main, False)] if main else []) + [([a], True) for a in hidden]:
        if plan.encrypt:
            chunks = composing.encrypt_message(clean, store, config, passphrase, sign=plan.sign, to=recipients)
        elif plan.sign:
            chunks = composing.sign_message(clean, store, config, passphrase)
        else:
            chunks = [clean]
        copies.append(Copy(recipients, mime.join(chunks), is_bcc))  # made whole before any is sent
    return plan, copies


def deliver(copies, command, envelope_from=None):
    """Hand each copy to the real sendmail: `COMMAND -oi [-f FROM] -- RECIPIENTS`, stdin the copy.

    The copies are made whole by prepare(), before the first is handed
    over, so a failure while signing or encrypting sends nothing.
    SendFailed, with sendmail's own words, when it fails.  Returns how many
    copies were sent.
    """
    import shlex
    import subprocess

    from plumbum import local
    from plumbum.commands import CommandNotFound

    argv = shlex.split(command)
    try:
        program = local[argv[0]]
    except CommandNotFound:
        raise SendFailed(f"the sendmail command {argv[0]!r} was not found; nothing was sent") from None
    for number, copy in enumerate(copies):
        args = [*argv[1:], "-oi", *(["-f", envelope_from] if envelope_from else []), "--", *copy.recipients]
        proc = program[args].popen(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = proc.communicate(copy.data)
        if proc.returncode != 0:
            said = (err or out).decode("utf-8", "replace").strip() or "no message"
            done = f"; the {number} cop{'y' if number == 1 else 'ies'} before it were sent" if number else \
                "; nothing was sent"
            raise SendFailed(f"{argv[0]} failed (exit {proc.returncode}) for {', '.join(copy.recipients)}:"
                             f" {said}{done}")
    return len(copies)


def save_sent(copy, folder):
    """Store what was really sent in notmuch (`notmuch insert`), tagged sent."""
    import subprocess

    from plumbum import local
    from plumbum.commands import CommandNotFound

    try:
        notmuch = local["notmuch"]
    except CommandNotFound:
        raise SendFailed("--save-sent needs notmuch, which is not installed (the message was sent)") from None
    proc = notmuch["insert", f"--folder={folder}", "--create-folder", "+sent", "-unread", "-new"].popen(
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = proc.communicate(copy.data)
    if proc.returncode != 0:
        raise SendFailed(f"notmuch insert failed: {err.decode('utf-8', 'replace').strip()} (the message was sent)")
