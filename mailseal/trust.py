"""Who may be trusted for what: the user's decisions and what follows from them.

Three kinds of evidence bind a certificate to an address in the trust
database: your own identity and your explicit install (like iOS's
"Install"), both 'trusted'; and what was learned from signed mail or the
directory, 'seen'.  A seen certificate counts as trusted only while it
chains to a trust anchor.  'removed' (like iOS's "Remove") is the user's
explicit distrust of that certificate for that address and always wins;
the history is kept.  For encryption, of the trusted and usable
certificates of an address, the one with the newest evidence wins (the
latest signing time it was seen with, or when you installed it), and
SMIMEEncryptionKeyPreference is honoured; an expired certificate never
blocks a newer valid one.
"""

from dataclasses import dataclass, field
from datetime import datetime, timezone

from . import certs
from .addresses import normalize
from .errors import FileProblem, NotFound


def _parse_time(text):
    return datetime.fromisoformat(text) if text else None


@dataclass
class Standing:
    """One certificate as it stands for one address."""

    address: str
    fingerprint: str
    cert: object
    status: str  # 'trusted', 'untrusted' or 'removed'
    reason: str
    sources: list
    rows: list = field(default_factory=list)
    evidence: object = None  # datetime of the newest evidence
    problem: str = None  # why it cannot be used for encryption now (None: it can)

    @property
    def usable(self):
        return self.status == "trusted" and self.problem is None

    @property
    def encrypt_key_pref(self):
        prefs = [r["encrypt_key_pref"] for r in self.rows if r.get("encrypt_key_pref")]
        return prefs[0] if prefs else None

    def to_json(self):
        info = {
            "address": self.address, "fingerprint_sha256": self.fingerprint, "status": self.status,
            "reason": self.reason, "sources": self.sources, "subject": self.cert.subject.rfc4514_string(),
            "issuer": self.cert.issuer.rfc4514_string(), "not_after": certs.not_after(self.cert).isoformat(),
            "usable_for_encryption": self.usable, "problem": self.problem,
            "last_evidence": self.evidence.isoformat() if self.evidence else None,
        }
        seen = [r for r in self.rows if r["source"] == "message"]
        if seen:
            info["first_seen"] = min(r["first_seen"] for r in seen)
            info["last_seen"] = max(r["last_seen"] for r in seen)
            info["message_id"] = seen[0]["message_id"]
            info["capabilities"] = _capabilities(seen[0])
        return info


def _capabilities(row):
    import json

    return json.loads(row["capabilities"]) if row.get("capabilities") else None


class TrustView:
    """The trust database seen through the user's decisions and trust anchors, at one moment."""

    def __init__(self, store, config=None, *, now=None, system_anchors=None):
        self.store = store
        self.config = config
        self.now = now or datetime.now(timezone.utc)
        self.system_anchors = (config.system_anchors if config is not None else False) \
            if system_anchors is None else system_anchors
        self._anchors = None
        self._cas = None
        self._validations = {}

    @property
    def anchors(self):
        if self._anchors is None:
            self._anchors = list(self.store.anchors())
            if self.system_anchors and self.config is not None:
                self._anchors += _system_bundle(self.config.system_bundle)
        return self._anchors

    def intermediates(self, extra_ders=()):
        if self._cas is None:
            self._cas = [certs.load_der(d) for d in self.store.all_certificate_ders(ca_only=True)]
        return [certs.load_der(d) for d in extra_ders] + self._cas

    def validate(self, cert, moment=None, extra_ders=()):
        """Path validation of cert at moment (default: now), cached."""
        from . import chain

        key = (certs.fingerprint(cert), moment or self.now, tuple(extra_ders))
        if key not in self._validations:
            self._validations[key] = chain.validate(cert, self.intermediates(extra_ders), self.anchors,
                                                    moment or self.now)
        return self._validations[key]

    def standings(self, address):
        """[Standing] of every certificate bound to address, newest evidence first."""
        groups = {}
        for row in self.store.bindings(address=address):
            groups.setdefault(row["fingerprint"], []).append(row)
        out = [self._standing(address, fp, rows) for fp, rows in groups.items()]
        out.sort(key=lambda s: (s.evidence, certs.not_before(s.cert)), reverse=True)
        return out

    def standing(self, address, fp):
        rows = [r for r in self.store.bindings(address=address, fingerprint=fp)]
        return self._standing(address, fp, rows) if rows else None

    def _standing(self, address, fp, rows):
        cert = certs.load_der(rows[0]["der"])
        sources = sorted({r["source"] for r in rows})
        evidence = max(_evidence(r, cert) for r in rows)
        removed = [r for r in rows if r["state"] == "removed"]
        explicit = [r for r in rows if r["state"] == "trusted"]
        if removed:
            status, reason = "removed", f"removed by you on {max(r['last_seen'] for r in removed)[:10]}"
        elif any(r["source"] == "identity" for r in explicit):
            status, reason = "trusted", "your own identity"
        elif explicit:
            status, reason = "trusted", f"installed by you on {min(r['first_seen'] for r in explicit)[:10]}"
        elif address not in certs.emails(cert):
            status, reason = "untrusted", f"the certificate does not carry the address {address}"
        else:
            validation = self.validate(cert)
            if validation.ok:
                anchor = validation.chain[-1]
                status, reason = "trusted", f"issued by {certs.common_name(anchor) or anchor.subject.rfc4514_string()}, a trusted CA"
            else:
                status, reason = "untrusted", validation.reason
        problem = certs.unusable_for(cert, "encrypt", self.now)
        return Standing(address, fp, cert, status, reason, sources, rows, evidence, problem)

    def encryption_target(self, address, prefer=None):
        """(certificate, None) to encrypt to address, or (None, why not).

        prefer: a source ('directory') whose usable certificates go first."""
        standings = self.standings(address)
        usable = [s for s in standings if s.usable]
        if prefer:
            usable.sort(key=lambda s: prefer not in s.sources)  # stable: newest first within each group
        if usable:
            chosen = usable[0]
            preferred = chosen.encrypt_key_pref
            for other in usable:
                if preferred and other.fingerprint == preferred:
                    chosen = other
            return chosen.cert, None
        if not standings:
            return None, "no certificate on record (install one with 'smime-trust install FILE')"
        trusted = [s for s in standings if s.status == "trusted"]
        if trusted:
            return None, "; ".join(sorted({s.problem for s in trusted}))
        live = [s for s in standings if s.status == "untrusted"]
        if live:
            s = live[0]
            if s.problem:  # expired, or not for encryption: trusting it would not help
                return None, f"its certificate ({s.fingerprint[:16]}): {s.problem}"
            return None, (f"its certificate ({s.fingerprint[:16]}) is not trusted: {s.reason}"
                          f" (trust it with 'smime-trust install {address}')")
        return None, "its certificate was removed by you (smime-trust install to trust it again)"

    def other_trusted(self, address, fp):
        """Trusted certificates of address other than fp (for 'certificate changed')."""
        return [s for s in self.standings(address) if s.fingerprint != fp and s.status == "trusted"]


def _evidence(row, cert):
    """When a binding last said something: signing time, install time, or the certificate's start."""
    if row["source"] == "message" and row.get("signing_time"):
        return _parse_time(row["signing_time"])
    if row["source"] in ("user", "directory"):
        return _parse_time(row["last_seen"])
    return certs.not_before(cert)


def _system_bundle(path):
    try:
        with open(path, "rb") as handle:
            return certs.load_many(handle.read(), path)
    except (OSError, FileProblem):
        return []


# -- the user's decisions --------------------------------------------------------

def install_file(store, data, *, ca=False, what="the file"):
    """Install the certificate(s) in data; return [{fingerprint, addresses, kind, subject}]."""
    found = certs.load_many(data, what)
    with store.transaction():
        if ca:
            return [_trust_anchor(store, cert, what) for cert in found]
        leaves = [c for c in found if not certs.is_ca(c)]
        if not leaves:
            raise FileProblem(f"{what} holds only CA certificates (use --ca to trust a CA)")
        for cert in found:
            store.add_certificate(cert)
        return [_install(store, cert, what) for cert in leaves]


def install_on_record(store, view, selector, *, ca=False):
    """Install a certificate already on record, named by fingerprint or address."""
    cert = pick(store, view, selector, for_install=True)
    with store.transaction():
        if ca:
            return [_trust_anchor(store, cert, selector)]
        return [_install(store, cert, selector)]


def _install(store, cert, what):
    fp = store.add_certificate(cert)
    addresses = certs.emails(cert)
    if not addresses:
        raise FileProblem(f"{what}: {cert.subject.rfc4514_string()} carries no e-mail address")
    for address in addresses:
        store.bind(address, fp, "user", "trusted")
        store.set_binding_state(address, fp, "seen", sources=("message", "directory"), only_state="removed")
    store.log("install", ", ".join(addresses), fp, {"subject": cert.subject.rfc4514_string()})
    return {"fingerprint": fp, "addresses": addresses, "kind": "certificate", "subject": cert.subject.rfc4514_string()}


def _trust_anchor(store, cert, what):
    if not (certs.is_ca(cert) or certs.is_self_signed(cert)):
        raise FileProblem(f"{what}: {cert.subject.rfc4514_string()} is not a CA certificate"
                          " (install it without --ca to trust it for its addresses)")
    fp = store.add_anchor(cert)
    store.log("anchor-install", None, fp, {"subject": cert.subject.rfc4514_string()})
    return {"fingerprint": fp, "addresses": [], "kind": "anchor", "subject": cert.subject.rfc4514_string()}


def remove(store, selector, *, ca=False):
    """Distrust a certificate for its addresses (or all of an address's), keeping history."""
    selector = selector.strip()
    done = []
    with store.transaction():
        if ca:
            fps = _fingerprints(store, selector)
            for fp in fps:
                if store.set_anchor_state(fp, "removed"):
                    store.log("anchor-remove", None, fp)
                    done.append({"fingerprint": fp, "addresses": [], "kind": "anchor"})
            if not done:
                raise NotFound(f"no trusted CA matches {selector}")
            return done
        if "@" in selector:
            address = normalize(selector)
            rows = [r for r in store.bindings(address=address) if r["source"] != "identity"]
            if not rows:
                raise NotFound(f"no certificate on record for {address}")
            targets = {(address, r["fingerprint"]) for r in rows}
        else:
            targets = {(r["address"], r["fingerprint"]) for fp in _fingerprints(store, selector)
                       for r in store.bindings(fingerprint=fp)}
            if not targets:
                raise NotFound(f"no address is bound to a certificate matching {selector}")
        for address, fp in sorted(targets):
            store.set_binding_state(address, fp, "removed")
            store.log("remove", address, fp)
            done.append({"fingerprint": fp, "addresses": [address], "kind": "certificate"})
    return done


def _fingerprints(store, selector):
    fps = store.fingerprints_like(selector)
    if not fps:
        raise NotFound(f"no certificate with fingerprint {selector} on record")
    if len(fps) > 1:
        raise NotFound(f"fingerprint {selector} is ambiguous: {', '.join(fp[:16] for fp in fps)}",
                       hint="give more of it")
    return fps


def pick(store, view, selector, for_install=False):
    """The certificate a user means: a fingerprint (prefix), or the newest seen for an address."""
    selector = selector.strip()
    if "@" not in selector:
        return store.certificate(_fingerprints(store, selector)[0])
    address = normalize(selector)
    standings = view.standings(address)
    if not standings:
        raise NotFound(f"no certificate on record for {address}")
    if for_install:
        candidates = [s for s in standings if s.status != "trusted" or "user" not in s.sources] or standings
        return candidates[0].cert
    return standings[0].cert


def status(view, addresses, directories=()):
    """[{address, ok, fingerprint|reason}] for each recipient: can mail to it be encrypted?
    (the directories are asked as for sending: see mailseal.directory)"""
    from .directory import encryption_target

    out = []
    for address in addresses:
        cert, reason, answers = encryption_target(view, directories, normalize(address))
        entry = {"address": normalize(address), "ok": cert is not None}
        if answers:
            entry["directory"] = [a.to_json() for a in answers]
        if cert is not None:
            entry.update(fingerprint_sha256=certs.fingerprint(cert), subject=cert.subject.rfc4514_string(),
                         not_after=certs.not_after(cert).isoformat())
        else:
            entry["reason"] = reason
        out.append(entry)
    return out


def describe_certificate(store, view, cert):
    """Everything 'smime-trust show' tells about a certificate (View Certificate)."""
    from cryptography.hazmat.primitives import hashes

    info = certs.describe(cert)
    info["fingerprint_sha1"] = cert.fingerprint(hashes.SHA1()).hex()
    fp = info["fingerprint_sha256"]
    validation = view.validate(cert)
    info["chain"] = [c.subject.rfc4514_string() for c in validation.chain] if validation.ok else None
    info["chain_status"] = "chains to a trust anchor" if validation.ok else validation.reason
    info["is_anchor"] = any(certs.fingerprint(a) == fp for a in store.anchors())
    addresses = sorted({r["address"] for r in store.bindings(fingerprint=fp)})
    info["bindings"] = [view.standing(a, fp).to_json() for a in addresses]
    return info
