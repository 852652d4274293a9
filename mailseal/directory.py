"""Recipients' certificates from an LDAP directory: the organisation's address list.

iOS Mail finds colleagues' certificates in the Exchange address list; the
open equivalent is an LDAP directory holding userCertificate;binary or
userSMIMECertificate.  What a directory holds is recorded in the trust
database as 'directory' bindings and believed for cache_hours; whether a
certificate may be used is decided like any other seen one (mailseal.trust):
it must carry the address and chain to a trust anchor.  A directory that
cannot be asked is a reason given for each recipient, never a silent
fallback to sending in clear.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from . import certs
from .errors import DirectoryUnavailable, MailsealError


@dataclass
class Answer:
    """What one directory said about one address."""

    directory: object  # config.Directory
    address: str
    certificates: list = field(default_factory=list)  # x509 certificates
    problems: list = field(default_factory=list)  # entries that could not be read
    error: str = None  # the directory could not be asked
    cached: bool = False
    looked_up: str = None

    def describe(self):
        """A short phrase for a recipient's reason."""
        where = f"the directory {self.directory.url}"
        if self.error:
            return f"{where} could not be asked: {self.error}"
        text = f"{where} holds {len(self.certificates) or 'no'} certificate(s) for it"
        if self.problems:
            text += " (" + "; ".join(self.problems) + ")"
        return text

    def to_json(self):
        return {"directory": self.directory.url, "base": self.directory.base, "address": self.address,
                "error": self.error, "problems": self.problems, "cached": self.cached, "looked_up": self.looked_up,
                "certificates": [{"fingerprint_sha256": certs.fingerprint(c), "subject": c.subject.rfc4514_string(),
                                  "not_after": certs.not_after(c).isoformat()} for c in self.certificates]}


def search(directory, address):
    """(certificates, problems) the directory holds for address; DirectoryUnavailable if it cannot be asked."""
    import ldap
    import ldap.filter

    where = directory.url
    conn = ldap.initialize(directory.url)
    conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
    conn.set_option(ldap.OPT_REFERRALS, 0)
    conn.set_option(ldap.OPT_NETWORK_TIMEOUT, directory.timeout)
    conn.set_option(ldap.OPT_TIMEOUT, directory.timeout)
    conn.timeout = directory.timeout  # python-ldap's wait for each synchronous answer
    if directory.ca_file:
        conn.set_option(ldap.OPT_X_TLS_CACERTFILE, directory.ca_file)
    if directory.url.startswith("ldaps://") or directory.starttls:
        conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
        conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
    query = directory.filter.replace("%s", ldap.filter.escape_filter_chars(address))
    try:
        if directory.starttls:
            conn.start_tls_s()
        conn.simple_bind_s(directory.bind_dn or "", _password(directory) if directory.bind_dn else "")
        results = conn.search_st(directory.base, ldap.SCOPE_SUBTREE, query, list(directory.attributes),
                                 timeout=directory.timeout)
    except ldap.SERVER_DOWN:
        raise DirectoryUnavailable(f"{where} cannot be reached (server down or wrong address)") from None
    except ldap.TIMEOUT:
        raise DirectoryUnavailable(f"{where} did not answer within {directory.timeout:g} s") from None
    except ldap.INVALID_CREDENTIALS:
        raise DirectoryUnavailable(f"{where} refused the bind as {directory.bind_dn or 'anonymous'}:"
                                   " wrong bind DN or password") from None
    except (ldap.CONFIDENTIALITY_REQUIRED, ldap.STRONG_AUTH_REQUIRED, ldap.INAPPROPRIATE_AUTH):
        raise DirectoryUnavailable(f"{where} requires an authenticated or encrypted connection"
                                   " (set bind_dn, starttls or use ldaps://)") from None
    except ldap.NO_SUCH_OBJECT:
        raise DirectoryUnavailable(f"{where} has no entry {directory.base} (check base)") from None
    except ldap.FILTER_ERROR:
        raise DirectoryUnavailable(f"{where} rejected the filter {directory.filter}") from None
    except ldap.LDAPError as exc:
        info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
        detail = info.get("info") or info.get("desc") or type(exc).__name__
        raise DirectoryUnavailable(f"{where} failed: {detail}") from None
    finally:
        try:
            conn.unbind_s()
        except ldap.LDAPError:
            pass
    wanted = {a.split(";")[0].lower() for a in directory.attributes}
    found, problems = [], []
    for dn, attributes in results:
        if dn is None:  # a search reference
            continue
        for name, values in attributes.items():
            base = name.split(";")[0].lower()
            if base not in wanted:
                continue
            for value in values:
                try:
                    for cert in _certificates(base, value):
                        if cert not in found:
                            found.append(cert)
                except (ValueError, MailsealError):
                    problems.append(f"a malformed {name.split(';')[0]} in {dn}")
    return found, problems


def _certificates(attribute, value):
    """The certificates an attribute value holds: a certificate, or (userSMIMECertificate) a PKCS#7 bundle."""
    if attribute == "usersmimecertificate":
        try:
            return [certs.load_der(value)]
        except ValueError:
            from .cms import signed

            return [certs.load_der(der) for der in signed.certificates_only(value)]
    return [certs.load_der(value)]


def _password(directory):
    if directory.password is not None:
        return directory.password
    if directory.password_command:
        from .passphrase import Passphrase

        return Passphrase(command=directory.password_command).get("the directory password").decode("utf-8")
    return ""


def consult(store, directory, address, *, refresh=False, now=None):
    """Ask directory about address (or use its unexpired answer) and record what it holds; an Answer."""
    now = now or datetime.now(timezone.utc)
    answer = Answer(directory, address)
    cached = store.directory_lookup(address, directory.key)
    if cached and not refresh and datetime.fromisoformat(cached["expires"]) > now:
        answer.cached, answer.looked_up, answer.problems = True, cached["looked_up"], cached["problems"]
        answer.certificates = [c for c in (store.certificate(fp) for fp in cached["fingerprints"]) if c is not None]
        return answer
    try:
        found, answer.problems = search(directory, address)
    except DirectoryUnavailable as exc:
        answer.error = str(exc).removeprefix(directory.url + " ")
        return answer
    # a PKCS#7 bundle may carry the issuing CAs: kept for building chains, not bound to the person
    answer.certificates = [c for c in found if not certs.is_ca(c)]
    with store.transaction():
        for cert in found:
            if certs.is_ca(cert):
                store.add_certificate(cert)
        fingerprints = []
        for cert in answer.certificates:
            fp = store.add_certificate(cert)
            fingerprints.append(fp)
            store.bind(address, fp, "directory", "seen")
        store.record_directory_lookup(address, directory.key, fingerprints, answer.problems,
                                      now + timedelta(hours=directory.cache_hours))
        store.log("directory-lookup", address, None, {"directory": directory.url, "certificates": fingerprints,
                                                      "problems": answer.problems})
    answer.looked_up = now.replace(microsecond=0).isoformat()
    return answer


def encryption_target(view, directories, address, *, refresh=False):
    """view.encryption_target(address), asking the directories as their order says.

    local-first (the default): only for an address without a usable local
    certificate; directory-first: always, so that an answer from the
    directory (the newest evidence) wins when it can be used.
    Returns (certificate or None, reason, [Answer]).
    """
    cert, reason = view.encryption_target(address)
    answers = []
    for directory in directories:
        if cert is not None and directory.order == "local-first":
            continue
        answers.append(consult(view.store, directory, address, refresh=refresh, now=view.now))
        found, why = view.encryption_target(address, prefer="directory" if directory.order == "directory-first" else None)
        if found is not None:
            return found, None, answers
        if cert is None:
            reason = why
    if cert is not None:
        return cert, None, answers
    said = [a.describe() for a in answers if a.error or a.problems or not a.certificates]
    return None, "; ".join([reason, *said]), answers
