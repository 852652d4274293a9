"""Reading a message: peel its S/MIME layers, verifying and decrypting.

One walk serves smime-verify and smime-decrypt.  From the root it removes
layer after layer (multipart/signed, opaque signed-data, enveloped-data),
checking each signature on the way, until it reaches content that is not
S/MIME.  The verdict of the message is that of the innermost signature:
the one that binds its signer to the content shown.  S/MIME parts found
below an unsigned container (a mailing-list footer, a forwarded message)
are checked too but never make the message as a whole signed.
"""

import itertools
import re
from dataclasses import dataclass, field

from . import mime, protection
from .addresses import header_addresses
from .errors import DecryptionFailed, LimitExceeded, MailsealError, NotAMessage, Unsupported
from .verification import SignatureVerdict

SMIME_TYPES = ("application/pkcs7-mime", "application/x-pkcs7-mime")
SIGNATURE_TYPES = ("application/pkcs7-signature", "application/x-pkcs7-signature")
MAX_LAYERS = 8
_CMS_KINDS = {"signed_data": "opaque", "enveloped_data": "enveloped",
              "authenticated_enveloped_data": "enveloped", "compressed_data": "compressed"}


def smime_kind(entity):
    """'signed', 'opaque', 'enveloped', 'certs-only', 'compressed' or None."""
    ctype = entity.ctype
    if ctype == "multipart/signed":
        protocol = (entity.param("protocol") or "").lower()
        return "signed" if protocol in SIGNATURE_TYPES else "foreign-signed"
    name = (entity.filename() or "").lower()
    if ctype in SMIME_TYPES or (ctype == "application/octet-stream" and name.endswith(".p7m")):
        stype = (entity.param("smime-type") or "").lower()
        if stype == "signed-data":
            return "opaque"
        if stype in ("enveloped-data", "authenveloped-data"):
            return "enveloped"
        if stype == "certs-only":
            return "certs-only"
        if stype == "compressed-data":
            return "compressed"
        # no (or an unknown) smime-type: Outlook's .p7m; look at the CMS itself
        from .cms import content_type_of

        return _CMS_KINDS.get(content_type_of(entity.decoded_body()), "opaque")
    return None


@dataclass
class Layer:
    kind: str  # 'signed', 'opaque', 'enveloped'
    path: str  # MIME part number where it was found ("" = the message itself)
    verdict: SignatureVerdict = None
    decrypted: object = None  # mailseal.cms.enveloped.Decrypted

    def to_json(self):
        out = {"kind": {"signed": "multipart-signed", "opaque": "opaque-signed",
                        "enveloped": "encrypted"}[self.kind], "part": self.path or "message"}
        if self.verdict is not None:
            out.update(verdict=self.verdict.verdict, reasons=self.verdict.reasons,
                       signer=self.verdict.signer_json())
        if self.decrypted is not None:
            d = self.decrypted
            out.update(cipher=d.cipher, authenticated=d.authenticated, key_transport=d.key_transport,
                       recipients=d.recipient_count, notes=d.notes)
        return out


@dataclass
class Reading:
    root: object
    from_addrs: list
    date: object = None  # the Date header, parsed (UTC)
    layers: list = field(default_factory=list)
    entity: object = None  # what is left after the peeled layers
    encrypted_inside: bool = False
    nested: list = field(default_factory=list)  # Layers found below unsigned containers
    notes: list = field(default_factory=list)
    protection: object = None  # mailseal.protection.Protection, when the sender protected the header

    @property
    def signatures(self):
        return [l for l in self.layers if l.verdict is not None]

    @property
    def content_authenticated(self):
        """Is what is shown protected against change: by an AEAD cipher, or by a valid signature
        inside the encryption (CBC alone is not: EFAIL)."""
        d = self.decryption
        if d is not None and d.authenticated:
            return True
        valid = ("trusted", "untrusted", "expired", "changed", "mismatch")
        return any(l.verdict is not None and l.verdict.verdict in valid for l in self.layers)

    @property
    def decryption(self):
        found = [l.decrypted for l in self.layers if l.decrypted is not None]
        return found[-1] if found else None

    @property
    def verdict(self):
        """The message's SignatureVerdict (innermost signature, else unsigned)."""
        sigs = self.signatures
        if sigs:
            # every layer covers all that is inside it: the innermost signature
            # that is valid and by the sender speaks for the content shown
            by_sender = [l for l in sigs if l.verdict.verdict not in ("bad", "mismatch")]
            broken = [l for l in sigs if l.verdict.verdict == "bad"]
            chosen = by_sender[-1] if by_sender else (broken[0] if broken else sigs[-1])
            verdict = chosen.verdict
            for other in sigs:
                if other is chosen:
                    continue
                who = ", ".join(_emails(other.verdict)) or "an unknown signer"
                where = "outer" if sigs.index(other) < sigs.index(chosen) else "inner"
                note = f"also signed ({where} layer) by {who}: {other.verdict.verdict}"
                if other.verdict.verdict == "bad" and other.verdict.reasons:
                    note += f" ({other.verdict.reasons[0]})"
                if note not in verdict.notes:
                    verdict.notes.append(note)
            return verdict
        reasons = []
        if self.encrypted_inside:
            reasons.append("the message is encrypted; 'smime-decrypt --verify' checks what is inside")
        for layer in self.nested:
            if layer.verdict is not None:
                who = ", ".join(_emails(layer.verdict)) or "an unknown signer"
                reasons.append(f"only part {layer.path} is signed (by {who}: {layer.verdict.verdict});"
                               " the message as a whole is not")
            else:
                reasons.append(f"part {layer.path} is encrypted inside an unencrypted message and was not opened")
        if not reasons:
            reasons.append("the message carries no S/MIME signature")
        return SignatureVerdict("unsigned", reasons)

    def output_message(self):
        """Outer header fields of the message with the reached entity as body, as chunks
        (with header protection: the protected fields, see mailseal.protection.unwrap)."""
        outer = [h for h in self.root.headers if not mime.is_content_header(h) and h.lname != "mime-version"]
        if self.protection is not None:
            from .protection import unwrap

            carrier = _header_carrier(self.entity)
            fields, own = unwrap(outer, carrier)
            if carrier is not self.entity:  # a signature left in place: its content is not touched
                return mime.assemble(fields, mime.canonical(self.entity.raw), self.root.eol)
            body = mime.canonical(self.entity.raw[self.entity.body_start:])
            return mime.assemble(fields, [mime.header_block(own) + mime.CRLF, body], self.root.eol)
        return mime.assemble(outer, mime.canonical(self.entity.raw), self.root.eol)

    def to_json(self):
        verdict = self.verdict
        out = {
            "verdict": verdict.verdict,
            "from": self.from_addrs,
            "signer": verdict.signer_json(),
            "reasons": verdict.reasons,
            "notes": verdict.notes + self.notes,
            "encrypted": any(l.kind == "enveloped" for l in self.layers) or self.encrypted_inside,
            "layers": [l.to_json() for l in self.layers],
            "parts": [l.to_json() for l in self.nested],
        }
        d = self.decryption
        if d is not None:
            out["decryption"] = {"cipher": d.cipher, "authenticated": d.authenticated,
                                 "key_transport": d.key_transport, "notes": d.notes}
            out["content_authenticated"] = self.content_authenticated
        if self.protection is not None:
            out["protected_headers"] = self.protection.to_json()
        return out


_ADDRESS_LIKE = re.compile(r"[^\s<>\"'(),;:@]+@[^\s<>\"'(),;:@]+\.[^\s<>\"'(),;:@]+")


def _display_name_check(root, reading):
    """A From whose display name is another address ("alice@example.org" <mallory@evil.example>)
    shows a reader that other address: no signature binds to it, so it is a mismatch."""
    from .addresses import normalize

    value = root.get("From") or ""
    name = value.rsplit("<", 1)[0] if "<" in value else ""
    shown = {normalize(a) for a in _ADDRESS_LIKE.findall(name)} - set(reading.from_addrs)
    if not shown:
        return
    for layer in reading.layers:
        if layer.verdict is not None and layer.verdict.verdict == "trusted":
            layer.verdict.verdict = "mismatch"
            layer.verdict.reasons.insert(0, f"the From display name shows {', '.join(sorted(shown))}, but the"
                                            f" message is from {', '.join(reading.from_addrs)}")


def _header_carrier(entity):
    """The entity whose header may hold protected fields: entity itself, or the signed content of
    a multipart/signed left unverified (smime-decrypt without --verify)."""
    if entity.ctype == "multipart/signed":
        try:
            return entity.parts()[0]
        except MailsealError:
            return entity
    return entity


def _emails(verdict):
    from . import certs

    return certs.emails(verdict.signer) if verdict.signer is not None else []


def read(raw, judge, *, candidates=None, peel_inner_signatures=True, search_parts=True):
    """Peel the S/MIME layers of raw; return a Reading.

    candidates: decryption keys (see mailseal.cms.enveloped.decrypt); None
    means do not decrypt.  peel_inner_signatures=False stops at the first
    signature inside a decrypted layer, so it stays verifiable later.
    """
    root = mime.parse_message(raw)
    reading = Reading(root, header_addresses(root, "From"), date=_date(root))
    entity, decrypted = root, False
    while True:
        kind = smime_kind(entity)
        if kind is None:
            break
        if len(reading.layers) >= MAX_LAYERS:
            raise LimitExceeded(f"more than {MAX_LAYERS} nested S/MIME layers")
        if kind in ("signed", "opaque"):
            if decrypted and not peel_inner_signatures:
                break
            layer, entity = _peel_signature(entity, kind, "", judge, reading.from_addrs, reading.date)
            reading.layers.append(layer)
        elif kind == "enveloped":
            if candidates is None:
                reading.encrypted_inside = True
                break
            layer, entity = _peel_encryption(entity, candidates)
            reading.layers.append(layer)
            decrypted = True
        elif kind == "foreign-signed":
            # an OpenPGP (or other) signature: not ours to check, but its first
            # part is the whole content, not a part of it
            reading.notes.append(f"a {entity.param('protocol') or 'non-S/MIME'} signature was not checked")
            parts = entity.parts()
            entity = mime.Entity(mime.canonical(parts[0].raw), strict=False, depth=entity.depth + 1)
        elif kind == "certs-only":
            reading.notes.append("the message carries certificates only (certs-only), no signed content")
            break
        else:
            raise Unsupported(f"S/MIME {kind} content is not supported")
    reading.entity = entity
    _display_name_check(root, reading)
    carrier = _header_carrier(entity)
    reading.protection = protection.read(carrier, root)
    if reading.protection is not None:
        reading.notes += reading.protection.notes
        if "from" in reading.protection.fields:  # the protected From is the sender, as signed
            reading.from_addrs = header_addresses(carrier, "From") or reading.from_addrs
    if search_parts and entity.is_multipart:
        _search_parts(entity, "", judge, reading)
    return reading


def _date(entity):
    """The Date header as an aware UTC datetime, or None."""
    return mime.parse_date(entity.get("Date"))


def _peel_signature(entity, kind, path, judge, from_addrs, date=None):
    if kind == "signed":
        parts = entity.parts()
        if len(parts) != 2:
            raise NotAMessage(f"multipart/signed must have 2 parts (content and signature), this one has {len(parts)}")
        if (parts[1].ctype not in SIGNATURE_TYPES
                and not (parts[1].ctype == "application/octet-stream"
                         and (parts[1].filename() or "").lower().endswith(".p7s"))):
            raise NotAMessage(f"the second part of multipart/signed is {parts[1].ctype}, not a signature")
        content = mime.canonical(parts[0].raw)
        result = judge.check_signed(parts[1].decoded_body(), content)
    else:
        result = judge.check_signed(entity.decoded_body())
        if result.content is None:
            raise NotAMessage("opaque signed-data without content")
        content = mime.canonical(result.content)
    inner = mime.Entity(content, strict=False, depth=entity.depth + 1)
    if protection.protected_from(inner):  # the From inside the signature is the one it binds to
        from_addrs = header_addresses(inner, "From") or from_addrs
    verdict = judge.judge(result, from_addrs, date)
    return Layer(kind, path, verdict=verdict), inner


def _peel_encryption(entity, candidates):
    from .cms import enveloped

    decrypted = enveloped.decrypt(entity.decoded_body(), candidates)
    inner = _decrypted_entity(mime.canonical(decrypted.content), decrypted, entity.depth + 1)
    return Layer("enveloped", "", decrypted=decrypted), inner


def _decrypted_entity(content, decrypted, depth):
    """The entity a decryption gave: its content, or bare text given a text/plain header."""
    inner = mime.Entity(content, strict=False, depth=depth)
    if inner.headers:
        return inner
    # some senders (openssl cms without -text) encrypt bare text; random
    # bytes from a tampered key would not be text, so refuse those
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptionFailed("the decrypted data is neither a MIME entity nor text:"
                               " the message was altered or the key is wrong") from None
    decrypted.notes.append("the decrypted content had no MIME header; it is shown as plain text")
    return mime.Entity(b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + content, strict=False, depth=depth)


def open_encrypted(handle, piece=1 << 20):
    """Read a message from handle; if its outermost layer is encrypted (base64), decode as it reads.

    Returns (root, der): root an Entity of the message's header alone and
    der the encrypted part's CMS data, the base64 text never held whole;
    or (None, raw) with the whole message as bytes when it is anything else.
    """
    head = bytearray()
    end = -1
    while end < 0:
        chunk = handle.read(piece)
        if not chunk:
            return None, bytes(head)
        head += chunk
        found = [i for i in (head.find(b"\n\n"), head.find(b"\n\r\n")) if i >= 0]
        if found:
            end = min(found) + (2 if head[min(found) + 1] == 0x0A else 3)
    try:
        root = mime.parse_message(bytes(head[:end]))
    except MailsealError:
        root = None
    if root is None or smime_kind(root) != "enveloped" or root.transfer_encoding != "base64":
        return None, bytes(head) + handle.read()
    der, carry = bytearray(), bytes(head[end:])
    del head
    while True:
        chunk = handle.read(piece)
        text = (carry + chunk).translate(None, b" \t\r\n")
        usable = len(text) if not chunk else len(text) // 4 * 4
        der += mime.decode_base64(text[:usable])
        carry = text[usable:]
        if not chunk:
            return root, der


def decrypt_stream(root, der, candidates):
    """For a plain decryption: (Decrypted, the output message as chunks made while it is written).

    root and der come from open_encrypted().  The plaintext is made a
    megabyte at a time after every check has passed (see
    mailseal.cms.enveloped.decrypt_stream), so a large message is never
    held twice.  An inner signature stays in place, to be verified later.
    """
    from .cms import enveloped

    outer = [h for h in root.headers if not mime.is_content_header(h) and h.lname != "mime-version"]
    decrypted, chunks = enveloped.decrypt_stream(der, candidates)
    first = next(chunks, b"")
    head = mime.Entity(bytes(first[:1 << 16]), strict=False)
    if not head.headers or (head.body_start == len(head.raw) and len(first) > len(head.raw)):
        # no MIME header (or one longer than we looked at): the whole way
        inner = _decrypted_entity(mime.canonical(b"".join([first, *chunks])), decrypted, 1)
        return decrypted, mime.assemble(outer, mime.canonical(inner.raw), root.eol)
    carrier = _header_carrier(head)
    if protection.read(carrier, root) is not None and head.body_start < len(head.raw):
        fields, own = protection.unwrap(outer, carrier)
        if carrier is head:
            body = itertools.chain([mime.header_block(own) + mime.CRLF, first[head.body_start:]], chunks)
        else:  # a signature left in place: the entity goes out untouched, under the protected header
            body = itertools.chain([first], chunks)
        return decrypted, mime.assemble(fields, body if root.eol != mime.CRLF else mime.crlf_chunks(body), root.eol)
    body = itertools.chain([first], chunks)
    return decrypted, mime.assemble(outer, body if root.eol != mime.CRLF else mime.crlf_chunks(body), root.eol)


def _search_parts(entity, path, judge, reading):
    """Record S/MIME parts inside an unsigned multipart (checked, never trusted as a whole)."""
    try:
        parts = entity.parts()
    except MailsealError:
        return
    for number, part in enumerate(parts, 1):
        part_path = f"{path}.{number}" if path else str(number)
        kind = smime_kind(part)
        from_addrs = reading.from_addrs
        if kind is None and part.ctype == "message/rfc822":
            # a forwarded message: its signature binds to its own From
            part = mime.Entity(part.decoded_body(), strict=False, depth=part.depth + 1)
            kind = smime_kind(part)
            from_addrs = header_addresses(part, "From")
        if kind in ("signed", "opaque"):
            try:
                layer, _ = _peel_signature(part, kind, part_path, judge, from_addrs)
            except MailsealError as exc:  # a broken nested part must not hide the rest
                layer = Layer(kind, part_path, verdict=SignatureVerdict("bad", [exc.one_line()]))
            reading.nested.append(layer)
        elif kind == "enveloped":
            reading.nested.append(Layer("enveloped", part_path))
        elif part.is_multipart:
            _search_parts(part, part_path, judge, reading)
