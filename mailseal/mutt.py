"""mutt's own S/MIME key store, written from the trust database.

mutt's classic S/MIME backend finds recipients' certificates and your keys
in $smime_certificates and $smime_keys: a directory of PEM files named by
key id, and an `.index` file with one line per address:

    mailbox keyid label issuer_keyid trust purpose

(trust: t trusted, u unverified, e expired; purpose: e encrypt, s sign).
mutt parses `.index` itself, so mailseal writes it the same way
smime_keys does.  With `export_dir` set in the [mutt] section of
config.toml, every change to the trust database re-exports, so mutt's
compose menu always finds what mailseal knows.
"""

import os
import re

from . import certs, identity, paths
from .trust import TrustView

_OURS = re.compile(r"^[0-9a-f]{8}\.\d+$")


def keyid(fp, taken):
    """mutt-style key id for a fingerprint: 8 hex digits and a counter."""
    n = 0
    while f"{fp[:8]}.{n}" in taken and taken[f"{fp[:8]}.{n}"] != fp:
        n += 1
    taken[f"{fp[:8]}.{n}"] = fp
    return f"{fp[:8]}.{n}"


def _label(cert):
    return re.sub(r"\s+", "_", certs.common_name(cert)).strip("_") or "-"


def _purpose(cert, moment):
    out = ""
    if certs.unusable_for(cert, "encrypt", moment) is None:
        out += "e"
    if certs.unusable_for(cert, "sign", moment) is None:
        out += "s"
    return out or "es"


def export(store, config, directory):
    """Write DIRECTORY/certificates and DIRECTORY/keys with their .index files."""
    directory = os.path.expanduser(directory)
    view = TrustView(store, config)
    cert_dir = os.path.join(directory, "certificates")
    key_dir = os.path.join(directory, "keys")
    os.makedirs(cert_dir, exist_ok=True)
    os.makedirs(key_dir, mode=0o700, exist_ok=True)
    taken = {}
    cert_files = {}  # keyid -> PEM
    by_fp = {}

    def add(cert):
        fp = certs.fingerprint(cert)
        if fp not in by_fp:
            by_fp[fp] = keyid(fp, taken)
            cert_files[by_fp[fp]] = certs.pem(cert)
        return by_fp[fp]

    def issuer_id(cert):
        if certs.is_self_signed(cert):
            return "?"
        for der in store.all_certificate_ders(ca_only=True):
            issuer = certs.load_der(der)
            if issuer.subject == cert.issuer:
                return add(issuer)
        return "?"

    cert_lines, key_lines, key_files = [], [], {}
    addresses = sorted({r["address"] for r in store.bindings()})
    for address in addresses:
        for standing in view.standings(address):
            if standing.status == "removed":
                continue
            cert = standing.cert
            if certs.not_after(cert) < view.now:
                trust = "e"
            else:
                trust = "t" if standing.status == "trusted" else "u"
            kid = add(cert)
            cert_lines.append(f"{address} {kid} {_label(cert)} {issuer_id(cert)} {trust} {_purpose(cert, view.now)}")
    key_ids = {}
    for ident in identity.identities(store):
        kid = key_ids[ident.fingerprint] = add(ident.cert)
        with open(ident.key_file, "rb") as handle:
            key_files[kid] = handle.read()
        status = identity.status(ident, identity.identities(store))
        trust = "e" if status == "expired" else "t"
        for address in ident.emails:
            key_lines.append(f"{address} {kid} {_label(ident.cert)} {issuer_id(ident.cert)} {trust}"
                             f" {_purpose(ident.cert, view.now)}")
    for kid, pem in cert_files.items():
        _write(os.path.join(cert_dir, kid), pem, 0o644)
    for kid, pem in key_files.items():
        paths.write_private(os.path.join(key_dir, kid), pem)
    _write(os.path.join(cert_dir, ".index"), "".join(line + "\n" for line in cert_lines).encode(), 0o644)
    _write(os.path.join(key_dir, ".index"), "".join(line + "\n" for line in key_lines).encode(), 0o600)
    for folder, keep in ((cert_dir, cert_files), (key_dir, key_files)):
        for name in os.listdir(folder):
            if _OURS.match(name) and name not in keep:
                os.unlink(os.path.join(folder, name))
    return {"directory": directory, "certificates": len(cert_lines), "keys": len(key_lines),
            "key_ids": key_ids}  # identity fingerprint -> mutt key id (for smime_default_key)


def _write(path, data, mode):
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def sync(store, config):
    """Re-export when config.toml asks for it ([mutt] export_dir); return the summary or None."""
    target = getattr(config, "mutt_export_dir", None)
    if not target:
        return None
    return export(store, config, target)
