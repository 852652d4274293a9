"""Verdicts: what a valid or invalid signature means for the person reading.

The CMS layer says whether a signature holds over the bytes.  This module
decides what that means: is the signer the sender (an address in the
certificate equals From), was the certificate valid when the message was
signed, does it chain to a trust anchor or did the user install it for
this address.  Every verdict carries its reasons.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from . import certs

#: verdict -> (exit code, banner mark, short meaning)
VERDICTS = {
    "trusted": (0, "✓", "valid signature from the sender, trusted"),
    "untrusted": (1, "?", "valid signature, but the signer is not trusted"),
    "mismatch": (2, "!", "valid signature, but not by the sender in From"),
    "expired": (3, "!", "valid signature, but the certificate was not valid when it signed"),
    "changed": (4, "!", "valid signature, but the sender's certificate changed"),
    "bad": (5, "✗", "the signature does not verify or the content was altered"),
    "unsigned": (6, "-", "nothing in this message is signed as a whole"),
}

#: how far a signing time may lie in the future before it is distrusted
CLOCK_SKEW = timedelta(hours=12)
#: how far the (unsigned) Date header may drift from the signing time unnoticed
DATE_DRIFT = timedelta(hours=1)


@dataclass
class SignatureVerdict:
    verdict: str
    reasons: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    signer: object = None  # x509 certificate
    signing_time: object = None
    digest_algorithm: str = ""
    chain: list = None
    signers: int = 0
    capabilities: list = None  # what the signer says it can decrypt (SMIMECapabilities)
    encrypt_key_pref: dict = None  # which certificate the signer wants mail encrypted to
    certificates: list = None  # DER of every certificate the signature carried

    @property
    def exit_code(self):
        return VERDICTS[self.verdict][0]

    def signer_json(self):
        if self.signer is None:
            return None
        info = certs.describe(self.signer)
        info["signing_time"] = self.signing_time.isoformat() if self.signing_time else None
        info["digest_algorithm"] = self.digest_algorithm
        if self.chain:
            info["chain"] = [c.subject.rfc4514_string() for c in self.chain]
        return info


class Judge:
    """Turns CMS signature reports into verdicts, using the trust database."""

    def __init__(self, store, config, *, allow_sha1=None, system_anchors=None, now=None):
        from .trust import TrustView

        self.store = store
        self.config = config
        self.allow_sha1 = config.allow_sha1 if allow_sha1 is None else allow_sha1
        self.view = TrustView(store, config, now=now, system_anchors=system_anchors)
        self.now = self.view.now

    def check_signed(self, data, detached=None):
        """Verify a SignedData, looking up a missing signer certificate on record."""
        from .cms import signed

        result = signed.verify(data, detached, allow_sha1=self.allow_sha1)
        missing = [r for r in result.signers if r.cert_der is None]
        if missing:
            extra = self.store.all_certificate_ders()
            if extra:
                result = signed.verify(data, detached, extra_certs=extra, allow_sha1=self.allow_sha1)
        return result

    def judge(self, result, from_addrs, date=None):
        """A SignatureVerdict for a mailseal.cms.signed.SignedContent."""
        if not result.signers:
            return SignatureVerdict("bad", ["the signature has no signer"])
        bad = [r for r in result.signers if not r.ok]
        if bad:
            report = bad[0]
            verdict = SignatureVerdict("bad", list(report.problems), list(report.notes),
                                       signers=len(result.signers), digest_algorithm=report.digest_algorithm,
                                       signing_time=report.signing_time)
            if report.cert_der:
                verdict.signer = certs.load_der(report.cert_der)
            if len(result.signers) > 1:
                verdict.reasons.append(f"signer {report.index + 1} of {len(result.signers)} fails;"
                                       " a message is only as good as its worst signature")
            return verdict
        chosen = result.signers[0]
        for report in result.signers:
            if set(certs.emails(certs.load_der(report.cert_der))) & set(from_addrs):
                chosen = report
                break
        cert = certs.load_der(chosen.cert_der)
        verdict = SignatureVerdict("untrusted", [], list(chosen.notes), cert, chosen.signing_time,
                                   chosen.digest_algorithm, signers=len(result.signers),
                                   capabilities=chosen.capabilities, encrypt_key_pref=chosen.encrypt_key_pref,
                                   certificates=list(result.certificates))
        if len(result.signers) > 1:
            verdict.notes.append(f"{len(result.signers)} signers, all valid")
        emails = certs.emails(cert)
        if not from_addrs:
            verdict.verdict = "mismatch"
            verdict.reasons.append("the message has no From address to bind the signature to")
            return verdict
        if len(from_addrs) > 1:
            verdict.verdict = "mismatch"
            verdict.reasons.append(f"the message has several From addresses ({', '.join(from_addrs)});"
                                   " one signature cannot vouch for all of them")
            return verdict
        sender = from_addrs[0]
        if sender not in emails:
            verdict.verdict = "mismatch"
            verdict.reasons.append(f"signed by {', '.join(emails) or 'a certificate without address'},"
                                   f" but the message is From {sender}")
            return verdict
        moment = self.now
        if chosen.signing_time is not None:
            if chosen.signing_time > self.now + CLOCK_SKEW:
                verdict.notes.append(f"the signing time {chosen.signing_time:%Y-%m-%d %H:%M} UTC lies in the"
                                     " future; judged at the current time instead")
            else:
                moment = chosen.signing_time
                if date is not None and abs((date - moment).total_seconds()) > DATE_DRIFT.total_seconds():
                    verdict.notes.append(f"the Date header ({date:%Y-%m-%d %H:%M} UTC) differs from the signing time"
                                         " by more than an hour; the Date header is not signed and may have been changed")
        if not certs.valid_at(cert, moment):
            verdict.verdict = "expired"
            verdict.reasons.append(f"the certificate is valid {certs.not_before(cert):%Y-%m-%d} to"
                                   f" {certs.not_after(cert):%Y-%m-%d}, the message was signed"
                                   f" {moment:%Y-%m-%d %H:%M} UTC")
            return verdict
        if moment != self.now and not certs.valid_at(cert, self.now):
            verdict.notes.append(f"the certificate has expired since ({certs.not_after(cert):%Y-%m-%d});"
                                 " it was valid when the message was signed")
        fp = certs.fingerprint(cert)
        validation = self.view.validate(cert, moment, tuple(result.certificates))
        standing = self.view.standing(sender, fp)
        if standing is not None and standing.status == "removed":
            verdict.reasons.append(f"this certificate was {standing.reason} for {sender}"
                                   + ("; it would otherwise chain to a trusted CA" if validation.ok else ""))
        elif validation.ok:
            verdict.verdict = "trusted"
            verdict.chain = validation.chain
            anchor = validation.chain[-1]
            verdict.reasons.append(f"issued to {sender} by {certs.common_name(anchor) or anchor.subject.rfc4514_string()},"
                                   " a trusted CA")
        elif standing is not None and standing.status == "trusted":
            verdict.verdict = "trusted"
            verdict.reasons.append(f"the certificate is {standing.reason} for {sender}")
        elif validation.expired:
            verdict.verdict = "expired"
            verdict.reasons.append(validation.reason)
        else:
            known = self.view.other_trusted(sender, fp)
            if known:
                verdict.verdict = "changed"
                verdict.reasons.append(
                    f"{sender} has another trusted certificate on record ({known[0].fingerprint[:16]},"
                    f" {known[0].reason}); this one ({fp[:16]}) is not trusted: {validation.reason}."
                    f" If {sender} really changed certificates: smime-trust install {fp[:16]}")
            else:
                verdict.reasons.append(validation.reason)
        return verdict
