"""Learning certificates from signed mail: what the cert-import hook does with each message.

Only a signature that verifies and whose signer's certificate carries the
From address teaches anything (a bad, mismatched or partial signature, or
an unsigned message with a certificate attached, imports nothing).  From
such a message the signer's certificate, the chain it carried, its
SMIMECapabilities, its SMIMEEncryptionKeyPreference (and the certificate it
names) and the signing time are recorded, as 'seen': trusted only while the
certificate chains to a trust anchor, unless the user installs it.  Seeing
the same message again changes nothing.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from . import certs, reading
from .errors import MailsealError

#: notmuch tags for a verdict (besides smime-signed / smime-encrypted)
VERDICT_TAGS = {
    "trusted": {"smime-trusted"},
    "untrusted": {"smime-untrusted"},
    "expired": {"smime-untrusted", "smime-expired"},
    "changed": {"smime-untrusted", "smime-changed"},
    "mismatch": {"smime-untrusted", "smime-mismatch"},
    "bad": {"smime-bad"},
}
ALL_TAGS = {"smime-signed", "smime-encrypted", "smime-partial"} | set().union(*VERDICT_TAGS.values())


@dataclass
class Outcome:
    status: str  # 'imported', 'updated', 'unchanged', 'skipped' or 'error'
    verdict: str = None
    reason: str = ""
    address: str = None
    fingerprint: str = None
    events: list = field(default_factory=list)
    tags: set = field(default_factory=set)
    exit_code: int = 0  # of the error, for a single message

    def to_json(self):
        return {"status": self.status, "verdict": self.verdict, "reason": self.reason, "address": self.address,
                "fingerprint_sha256": self.fingerprint, "events": self.events, "tags": sorted(self.tags)}


def harvest(raw, judge, store, *, message_id=None):
    """Read one message and record what its signature teaches; return an Outcome."""
    return learn(store, examine(raw, judge), judge, message_id)


def examine(raw, judge):
    """Read and verify a message (raw None: it could not be read): the reading, or an error Outcome.

    Only reads the trust database: a batch examines many messages before
    it takes the write lock once to learn from them all."""
    if raw is None:
        return Outcome("error", reason="cannot be read (moved or deleted meanwhile?)", exit_code=42)
    try:
        return reading.read(raw, judge)
    except MailsealError as exc:
        return Outcome("error", reason=exc.one_line(), exit_code=exc.exit_code)


def learn(store, read, judge, message_id=None):
    """Record what an examined message teaches; return its Outcome."""
    if isinstance(read, Outcome):
        return read
    verdict = read.verdict
    outcome = Outcome("skipped", verdict=verdict.verdict, reason=verdict.reasons[0] if verdict.reasons else "")
    if read.encrypted_inside or any(layer.kind == "enveloped" for layer in read.layers):
        outcome.tags.add("smime-encrypted")
        store.remember_encrypted(message_id or read.root.get("Message-ID"))  # replies follow it
    if read.signatures:
        outcome.tags.add("smime-signed")
        outcome.tags |= VERDICT_TAGS[verdict.verdict]
    elif any(layer.verdict is not None for layer in read.nested):
        outcome.tags.add("smime-partial")
    if not read.signatures or verdict.verdict in ("bad", "mismatch") or verdict.signer is None:
        return outcome
    if message_id is None:
        message_id = read.root.get("Message-ID")
    _record(store, read, verdict, message_id, outcome, judge)
    return outcome


def _record(store, read, verdict, message_id, outcome, judge):
    sender = read.from_addrs[0]
    cert = verdict.signer
    fp = certs.fingerprint(cert)
    now = datetime.now(timezone.utc)
    moment = verdict.signing_time or read.date or now
    if moment > now + timedelta(minutes=5):
        # a time in the future says nothing (and must not pin this certificate as the newest
        # evidence for encryption): the certificate's own start stands in for it
        moment = certs.not_before(cert)
    outcome.address, outcome.fingerprint = sender, fp
    carried = [certs.load_der(der) for der in (verdict.certificates or [])]
    preferred = _preferred(verdict.encrypt_key_pref, carried, sender)
    with store.transaction():
        for other in carried:
            store.add_certificate(other)
        store.add_certificate(cert)
        pref_fp = certs.fingerprint(preferred) if preferred is not None else None
        seen = store.record_sighting(sender, fp, moment, capabilities=verdict.capabilities,
                                     encrypt_key_pref=pref_fp, message_id=message_id)
        if pref_fp and pref_fp != fp:
            store.record_sighting(sender, pref_fp, moment, message_id=message_id)
        if seen == "known":
            outcome.status, outcome.reason = "unchanged", "already on record"
            return
        outcome.status = "imported" if seen == "new" else "updated"
        detail = {"verdict": verdict.verdict, "message_id": message_id, "signing_time": moment.isoformat()}
        if seen == "new":
            store.log("import", sender, fp, detail)
            outcome.events.append("import")
            others = [s for s in judge.view.other_trusted(sender, fp) if s.fingerprint != pref_fp]
            if verdict.verdict == "changed":
                store.log("changed", sender, fp, dict(detail, known=[s.fingerprint for s in others]))
                outcome.events.append("changed")
            elif verdict.verdict == "trusted" and others:
                store.log("renewal", sender, fp, dict(detail, replaces=[s.fingerprint for s in others]))
                outcome.events.append("renewal")
        outcome.reason = f"{verdict.verdict}: {verdict.reasons[0]}" if verdict.reasons else verdict.verdict


def _preferred(pref, carried, sender):
    """The certificate SMIMEEncryptionKeyPreference names, if the message carried it for sender."""
    from .cms import match_certificate

    der = match_certificate(pref, [certs.der(c) for c in carried]) if pref else None
    if der is None:
        return None
    cert = certs.load_der(der)
    return cert if sender in certs.emails(cert) else None


@dataclass
class Summary:
    """Counts over a batch, for smime-import's report and --json."""

    messages: int = 0
    counts: dict = field(default_factory=dict)  # status -> n
    verdicts: dict = field(default_factory=dict)  # verdict -> n
    events: dict = field(default_factory=dict)  # event -> n
    errors: list = field(default_factory=list)  # (label, reason), the first few
    first_error_code: int = 0

    def add(self, label, outcome):
        self.messages += 1
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
        if outcome.verdict:
            self.verdicts[outcome.verdict] = self.verdicts.get(outcome.verdict, 0) + 1
        for event in outcome.events:
            self.events[event] = self.events.get(event, 0) + 1
        if outcome.status == "error":
            self.first_error_code = self.first_error_code or outcome.exit_code
            if len(self.errors) < 50:
                self.errors.append((label, outcome.reason))

    def to_json(self):
        return {"messages": self.messages, **{k: self.counts.get(k, 0) for k in
                                              ("imported", "updated", "unchanged", "skipped", "error")},
                "verdicts": self.verdicts, "events": self.events,
                "errors": [{"message": label, "reason": reason} for label, reason in self.errors]}

    def line(self):
        c = self.counts
        text = (f"{self.messages} message(s): {c.get('imported', 0)} imported, {c.get('updated', 0)} updated,"
                f" {c.get('unchanged', 0)} unchanged, {c.get('skipped', 0)} skipped, {c.get('error', 0)} unreadable")
        if self.events.get("changed"):
            text += f"; {self.events['changed']} certificate change(s): see 'smime-trust log'"
        return text


def run(items, judge, store, after=None):
    """Harvest every (label, message_id, raw) of items; after(label, message_id, outcome) each.

    raw None stands for a message that could not be read: it is counted, the
    batch goes on.
    """
    summary = Summary()
    for label, message_id, raw in items:
        outcome = harvest(raw, judge, store, message_id=message_id)
        summary.add(label, outcome)
        if after is not None:
            after(label, message_id, outcome)
    return summary


# -- a first harvest over a whole mailbox, on every core ------------------------------------

_worker = {}  # in a worker process: its own store and judge


def run_files(items, config, jobs, after=None, chunk=64):
    """Harvest every (label, message_id, path) of items in `jobs` worker processes.

    Checking signatures is CPU-bound and independent per message, so a first
    harvest over a mailbox uses every core; each worker writes through its own
    connection (SQLite WAL takes one short transaction per message).  Counts
    and the final state are the same as one process's; after() runs here, in
    the caller's process, as results come in.  Call it before opening a store
    in this process: workers are forked.
    """
    import multiprocessing

    items = list(items)
    batches = [items[i:i + chunk] for i in range(0, len(items), chunk)]
    summary = Summary()
    context = multiprocessing.get_context("fork")
    with context.Pool(jobs, initializer=_start_worker, initargs=(config,)) as pool:
        for results in pool.imap(_harvest_batch, batches):
            for label, message_id, outcome in results:
                summary.add(label, outcome)
                if after is not None:
                    after(label, message_id, outcome)
        pool.close()
        pool.join()
    return summary


def _start_worker(config):
    from multiprocessing import util

    from .store import Store
    from .verification import Judge

    store = Store(create=True)
    _worker.update(store=store, judge=Judge(store, config))
    util.Finalize(None, store.close, exitpriority=10)


def _harvest_batch(batch):
    """Examine a batch of files, then learn from them in one write transaction."""
    from .mailboxes import read_or_none

    store, judge = _worker["store"], _worker["judge"]
    examined = [(label, message_id, examine(read_or_none(path), judge)) for label, message_id, path in batch]
    with store.transaction():
        return [(label, message_id, learn(store, read, judge, message_id)) for label, message_id, read in examined]
