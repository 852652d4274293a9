"""A minimal BER/DER walker that finds where things are without copying them.

asn1crypto copies the contents of every level it parses, so a 25 MB
encrypted or opaque-signed message would be held four or five times over.
This walker only records offsets: the big OCTET STRING (the ciphertext, the
signed content) is handed on as memoryview slices, and only the small
pieces around it (RecipientInfos, algorithm identifiers, SignerInfos,
certificates) are given to asn1crypto.  It reads definite and indefinite
lengths (NSS writes the latter) and constructed OCTET STRINGs.
"""

from ..errors import MalformedCMS

MAX_DEPTH = 64

SEQUENCE = 0x30
SET = 0x31
OCTET_STRING = 0x04
CONSTRUCTED_OCTET_STRING = 0x24


class TLV:
    """One element: its identifier byte and where header, contents and end lie."""

    __slots__ = ("tag", "start", "content_start", "content_end", "end")

    def __init__(self, tag, start, content_start, content_end, end):
        self.tag = tag
        self.start = start
        self.content_start = content_start
        self.content_end = content_end
        self.end = end

    @property
    def constructed(self):
        return bool(self.tag & 0x20)

    def raw(self, buf):
        """The whole element's bytes (a copy: use for small elements only)."""
        return bytes(buf[self.start:self.end])


def _fail(what):
    raise MalformedCMS(f"the CMS data is truncated or malformed ({what})")


def read(buf, pos, limit, depth=0):
    """The element starting at pos (which must end by limit)."""
    if depth > MAX_DEPTH:
        _fail("nested too deeply")
    if pos + 2 > limit:
        _fail("an element runs past the end")
    tag = buf[pos]
    i = pos + 1
    if tag & 0x1F == 0x1F:  # high tag number: skip its base-128 digits
        while i < limit and buf[i] & 0x80:
            i += 1
        i += 1
    if i >= limit:
        _fail("an element header runs past the end")
    first = buf[i]
    i += 1
    if first < 0x80:
        length = first
    elif first == 0x80:
        if not tag & 0x20:
            _fail("indefinite length on a primitive element")
        end = i
        while True:
            if end + 2 > limit:
                _fail("an indefinite-length element has no end-of-contents")
            if buf[end] == 0 and buf[end + 1] == 0:
                return TLV(tag, pos, i, end, end + 2)
            end = read(buf, end, limit, depth + 1).end
    else:
        count = first & 0x7F
        if count > 8 or i + count > limit:
            _fail("a length field is too long")
        length = int.from_bytes(buf[i:i + count], "big")
        i += count
    if i + length > limit:
        _fail("an element is longer than the data")
    return TLV(tag, pos, i, i + length, i + length)


def children(buf, tlv, depth=0, count=None):
    """The elements inside a constructed element (only the first count, if given)."""
    out = []
    pos = tlv.content_start
    while pos < tlv.content_end and (count is None or len(out) < count):
        child = read(buf, pos, tlv.content_end, depth + 1)
        out.append(child)
        pos = child.end
    return out


def octets(buf, tlv, depth=0):
    """The contents of a (possibly constructed) OCTET STRING as memoryview chunks."""
    if not tlv.constructed:
        return [buf[tlv.content_start:tlv.content_end]]
    chunks = []
    for child in children(buf, tlv, depth):
        if child.tag not in (OCTET_STRING, CONSTRUCTED_OCTET_STRING):
            _fail("a constructed OCTET STRING holds something else")
        chunks += octets(buf, child, depth + 1)
    return chunks


def header(tag, length):
    """A DER identifier and length for contents of the given length."""
    if length < 0x80:
        return bytes([tag, length])
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big")


def content_info(buf):
    """(content type OID element, content element) of a ContentInfo."""
    top = read(buf, 0, len(buf))
    if top.tag != SEQUENCE:
        _fail("it does not start with a SEQUENCE")
    kids = children(buf, top)
    if len(kids) < 2 or kids[0].tag != 0x06 or kids[1].tag != 0xA0:
        _fail("not a ContentInfo")
    inner = children(buf, kids[1])
    if len(inner) != 1:
        _fail("a ContentInfo holds more than one content")
    return kids[0], inner[0]


def size(chunks):
    return sum(len(c) for c in chunks)


def tlv(tag, chunks):
    """An element around contents given as a list of byte chunks (nothing is copied)."""
    return [header(tag, size(chunks)), *chunks]


def oid_value(buf, element):
    """The dotted or asn1crypto name of an OBJECT IDENTIFIER element."""
    from asn1crypto import cms

    return cms.ContentType.load(element.raw(buf)).native
