"""Byte-exact MIME: split, inspect and build messages without re-serialising.

A signature covers exact bytes, so nothing here feeds a message through
Python's email generator (it refolds headers and rewrites line endings).
An Entity is a view on the raw bytes: header fields as they arrived, the
body as it arrived, and the parts of a multipart body cut at the
boundaries, so the first part of a multipart/signed message is exactly the
bytes its signer hashed.
"""

import binascii
import itertools
import os
import re

from .errors import BadEncoding, LimitExceeded, NotAMessage

CRLF = b"\r\n"

#: largest depth of nested entities we walk (multipart in message/rfc822 in ...)
MAX_DEPTH = 32
#: most parts in one multipart body
MAX_PARTS = 10000

_FIELD_NAME = re.compile(rb"[!-9;-~]+[ \t]*:")
_CONTENT_HEADERS = ("content-",)


def canonical(data):
    """Return data with every line ending as CRLF (RFC 8551 canonical form).

    A lone CR is treated as a line ending too, so converting the result to
    LF and back gives the same bytes.  Data already canonical is returned
    as it is (no copy).
    """
    if b"\r" not in data:
        return data.replace(b"\n", CRLF)
    crlf = data.count(CRLF)
    if data.count(b"\r") == crlf and data.count(b"\n") == crlf:
        return data
    return data.replace(CRLF, b"\n").replace(b"\r", b"\n").replace(b"\n", CRLF)


def to_lf(data):
    """Return data with CRLF line endings turned into LF."""
    return data.replace(CRLF, b"\n")


class Lazy:
    """Chunks made when they are read, whose total size is known beforehand.

    A large part passes through line-ending conversion, encryption and
    base64 a megabyte at a time instead of as whole copies (a 25 MB
    attachment would otherwise be held four or five times over).  Reading
    it again makes the chunks again.  Chunk lists may hold Lazy elements
    beside bytes: ber.size() counts them by len(), flat() reads them.
    """

    __slots__ = ("size", "make")

    def __init__(self, size, make):
        self.size = size
        self.make = make  # a function returning an iterable of byte chunks

    def __len__(self):
        return self.size

    def __iter__(self):
        return iter(self.make())


def flat(chunks):
    """The byte chunks of a chunk list, Lazy elements read in place."""
    for chunk in chunks:
        if isinstance(chunk, Lazy):
            yield from flat(chunk)
        else:
            yield chunk


def join(chunks):
    """A chunk list as one bytes object (for small data and tests)."""
    return b"".join(flat(chunks))


_MB = 1 << 20


def canonical_region(raw, start, end):
    """canonical(raw[start:end]) as chunks, without copying a large region whole."""
    if end - start <= _MB:
        return [canonical(raw[start:end])]
    view = memoryview(raw)
    if raw.find(b"\r", start, end) < 0:
        def make():
            for i in range(start, end, _MB):
                yield bytes(view[i:min(i + _MB, end)]).replace(b"\n", CRLF)
        return [Lazy(end - start + raw.count(b"\n", start, end), make)]
    crlf = raw.count(CRLF, start, end)
    if raw.count(b"\r", start, end) == crlf and raw.count(b"\n", start, end) == crlf:
        return [view[start:end]]  # canonical already: a view, no copy
    return [canonical(raw[start:end])]


def base64_lazy(chunks, eol=CRLF, width=76):
    """encode_base64(chunks) made as it is read."""
    n = sum(len(c) for c in chunks)
    encoded = 4 * ((n + 2) // 3)
    size = encoded + len(eol) * ((encoded + width - 1) // width)
    return Lazy(size, lambda: _base64_lines(chunks, eol, width))


def _base64_lines(chunks, eol, width):
    for block in _blocks(flat(chunks), width // 4 * 3 * 1024):
        encoded = binascii.b2a_base64(block, newline=False)
        yield b"".join(encoded[i:i + width] + eol for i in range(0, len(encoded), width))


def lf_chunks(chunks, size=1 << 20):
    """CRLF to LF over a sequence of chunks, a megabyte at a time (no whole copy)."""
    carry = b""
    for chunk in flat(chunks):
        view = memoryview(chunk)
        for i in range(0, len(view), size):
            piece = carry + bytes(view[i:i + size])
            carry = b""
            if piece.endswith(b"\r"):
                carry, piece = b"\r", piece[:-1]
            yield piece.replace(CRLF, b"\n")
    if carry:
        yield carry


class Header:
    """One header field: its name and its raw bytes (continuation lines too)."""

    __slots__ = ("name", "raw")

    def __init__(self, name, raw):
        self.name = name
        self.raw = raw

    @property
    def lname(self):
        return self.name.lower()

    @property
    def value(self):
        """The unfolded value as text (undecodable bytes kept as escapes)."""
        colon = self.raw.index(b":")
        text = self.raw[colon + 1:].decode("utf-8", "surrogateescape")
        return " ".join(text.replace("\r", "").split("\n")).strip()

    def __repr__(self):
        return f"Header({self.name!r}, {self.value!r})"


def parse_params(value):
    """Split a structured header value into (first token lower-cased, params).

    Handles quoted strings with backslash escapes, comments are not expected
    in practice and are kept in the value, and RFC 2231 continuations and
    charset encoding (``name*0*=utf-8''...``).  Parameter names are lower-case.
    """
    items = []
    buf = []
    quoted = False
    escape = False
    for ch in value:
        if escape:
            buf.append(ch)
            escape = False
        elif quoted and ch == "\\":
            escape = True
        elif ch == '"':
            quoted = not quoted
            buf.append(ch)
        elif ch == ";" and not quoted:
            items.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    items.append("".join(buf))
    first = items[0].strip().lower()
    params = {}
    pieces = {}
    for item in items[1:]:
        if "=" not in item:
            continue
        name, _, val = item.partition("=")
        name = name.strip().lower()
        val = val.strip()
        if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
            val = val[1:-1]
        if "*" in name:
            base, _, rest = name.partition("*")
            index, star, _ = rest.partition("*")
            encoded = name.endswith("*")
            try:
                order = int(index) if index else 0
            except ValueError:
                continue
            pieces.setdefault(base, []).append((order, encoded, val))
        else:
            params.setdefault(name, val)
    for base, chunks in pieces.items():
        chunks.sort(key=lambda c: c[0])
        charset = "utf-8"
        raw = bytearray()
        for n, (order, encoded, val) in enumerate(chunks):
            if encoded:
                if n == 0 and val.count("'") >= 2:
                    charset, _, val = val.split("'", 2)
                    charset = charset or "utf-8"
                raw += _pct_decode(val)
            else:
                raw += val.encode("utf-8", "surrogateescape")
        try:
            params[base] = raw.decode(charset, "replace")
        except LookupError:
            params[base] = raw.decode("utf-8", "replace")
    return first, params


def _pct_decode(text):
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "%" and i + 2 < len(text) and _is_hex(text[i + 1:i + 3]):
            out.append(int(text[i + 1:i + 3], 16))
            i += 3
        else:
            out += text[i].encode("utf-8", "surrogateescape")
            i += 1
    return bytes(out)


def _is_hex(text):
    return len(text) == 2 and all(c in "0123456789abcdefABCDEF" for c in text)


class Entity:
    """A MIME entity (a whole message or one part) as a view on raw bytes."""

    def __init__(self, raw, *, strict=True, depth=0):
        if depth > MAX_DEPTH:
            raise LimitExceeded(f"MIME nesting deeper than {MAX_DEPTH} levels")
        self.depth = depth
        if strict and raw.startswith(b"From ") and not _FIELD_NAME.match(raw):
            # an mbox separator line, not part of the message
            raw = raw[raw.find(b"\n") + 1:] if b"\n" in raw else b""
        self.raw = raw
        nl = raw.find(b"\n")
        self.eol = CRLF if nl > 0 and raw[nl - 1:nl] == b"\r" else b"\n"
        self.headers, self.body_start = _parse_header_block(raw, strict)
        self._ctype = None

    @property
    def header_bytes(self):
        return self.raw[:self.body_start]

    @property
    def body(self):
        return self.raw[self.body_start:]

    def get(self, name, default=None):
        lname = name.lower()
        for h in self.headers:
            if h.lname == lname:
                return h.value
        return default

    def get_all(self, name):
        lname = name.lower()
        return [h.value for h in self.headers if h.lname == lname]

    @property
    def content_type(self):
        """(type/subtype in lower case, params); text/plain when absent."""
        if self._ctype is None:
            value = self.get("Content-Type")
            if value is None:
                self._ctype = ("text/plain", {"charset": "us-ascii"})
            else:
                ctype, params = parse_params(value)
                if "/" not in ctype:
                    ctype = "text/plain"
                self._ctype = (ctype, params)
        return self._ctype

    @property
    def ctype(self):
        return self.content_type[0]

    def param(self, name, default=None):
        return self.content_type[1].get(name, default)

    @property
    def transfer_encoding(self):
        return (self.get("Content-Transfer-Encoding") or "7bit").strip().lower()

    @property
    def is_multipart(self):
        return self.ctype.startswith("multipart/")

    def filename(self):
        disp = self.get("Content-Disposition")
        if disp:
            name = parse_params(disp)[1].get("filename")
            if name:
                return name
        return self.param("name")

    def parts(self):
        """The parts of a multipart body, each an Entity over its exact bytes."""
        return [Entity(self.raw[s:e], strict=False, depth=self.depth + 1)
                for s, e in self.part_spans()]

    def part_spans(self):
        """(start, end) offsets into raw of each part of a multipart body."""
        boundary = self.param("boundary")
        if not boundary:
            raise NotAMessage(f"{self.ctype} part has no boundary parameter")
        spans, closed = split_multipart(self.raw, boundary.encode("utf-8", "surrogateescape"), self.body_start)
        return spans

    def decoded_body(self):
        """The body with its Content-Transfer-Encoding undone."""
        return decode_transfer(memoryview(self.raw)[self.body_start:], self.transfer_encoding)


def _parse_header_block(raw, strict):
    """Return ([Header], offset of the body) for raw bytes."""
    if raw.startswith(b"\r\n"):
        return [], 2
    if raw.startswith(b"\n"):
        return [], 1
    match = re.search(rb"\n\r?\n", raw)
    if match:
        head_end, body_start = match.start() + 1, match.end()
    else:
        head_end = body_start = len(raw)
    headers = []
    pos = 0
    while pos < head_end:
        nl = raw.find(b"\n", pos, head_end)
        line_end = head_end if nl < 0 else nl + 1
        line = raw[pos:line_end]
        if line[:1] in (b" ", b"\t") and headers:
            headers[-1].raw += line
        else:
            match = _FIELD_NAME.match(line)
            if not match:
                if strict or not headers:
                    if strict:
                        what = "no header block" if not headers else f"line {len(headers) + 1} of the header is not a header field"
                        raise NotAMessage(f"input is not a mail message: {what}")
                    # a part whose "headers" are not headers: treat all as body
                    return [], 0
                raise NotAMessage("malformed header line in a MIME part")
            name = line[:match.end() - 1].rstrip(b" \t").decode("ascii")
            headers.append(Header(name, line))
        pos = line_end
    return headers, body_start


def split_multipart(body, boundary, offset=0, end=None):
    """Cut a multipart body at its delimiter lines (RFC 2046 section 5.1.1).

    Returns ([(start, end), ...], closed).  A part runs from just after its
    delimiter line's line ending up to, not including, the line ending that
    precedes the next delimiter.  Bytes are never copied or altered.  With
    offset, the body starts at that position of `body` (offsets stay
    relative to `body`); with end, it stops there.
    """
    limit = len(body) if end is None else end
    marker = b"--" + boundary
    spans = []
    start = None
    closed = False
    pos = offset
    while True:
        i = body.find(marker, pos, limit)
        if i < 0:
            break
        if i > offset and body[i - 1:i] != b"\n":
            pos = i + 1
            continue
        j = i + len(marker)
        is_close = body[j:j + 2] == b"--"
        if is_close:
            j += 2
        while body[j:j + 1] in (b" ", b"\t"):
            j += 1
        if body[j:j + 2] == CRLF:
            line_end = j + 2
        elif body[j:j + 1] == b"\n":
            line_end = j + 1
        elif j >= limit:
            line_end = j
        else:
            pos = i + 1  # "--boundary" followed by more text: not a delimiter
            continue
        if start is not None:
            end = i
            if end > offset and body[end - 1:end] == b"\n":
                end -= 1
                if end > offset and body[end - 1:end] == b"\r":
                    end -= 1
            spans.append((start, max(start, end)))
            if len(spans) > MAX_PARTS:
                raise LimitExceeded(f"more than {MAX_PARTS} parts in one multipart")
        if is_close:
            closed = True
            break
        start = line_end
        pos = line_end
    if start is not None and not closed:
        # no closing delimiter (truncated message): keep what we have
        spans.append((start, limit))
    if not spans:
        raise NotAMessage(f"multipart body has no part delimited by boundary {boundary.decode('utf-8', 'replace')!r}")
    return spans, closed


def decode_transfer(body, encoding):
    """Undo a Content-Transfer-Encoding; raise BadEncoding when it is broken."""
    if encoding == "base64":
        return decode_base64(body)
    if encoding == "quoted-printable":
        return binascii.a2b_qp(body)
    return bytes(body)


def decode_base64(data):
    """Decode MIME base64 (line breaks and whitespace allowed)."""
    try:
        return binascii.a2b_base64(data)
    except binascii.Error as exc:
        raise BadEncoding(f"base64 body cannot be decoded ({exc}): the message is probably truncated") from None


def _blocks(chunks, size):
    """Re-cut a sequence of chunks into blocks of exactly size bytes (the last shorter)."""
    pending = bytearray()
    for chunk in flat(chunks):
        view = memoryview(chunk)
        pos = 0
        if pending:
            pos = min(size - len(pending), len(view))
            pending += view[:pos]
            if len(pending) == size:
                yield bytes(pending)
                pending.clear()
        while len(view) - pos >= size:
            yield view[pos:pos + size]
            pos += size
        pending += view[pos:]
    if pending:
        yield bytes(pending)


def encode_base64(data, eol=CRLF, width=76):
    """MIME base64 with lines of `width` characters; data is bytes or a list of chunks."""
    chunks = data if isinstance(data, (list, tuple)) else [data]
    out = bytearray()
    for block in _blocks(chunks, width // 4 * 3 * 1024):
        encoded = binascii.b2a_base64(block, newline=False)
        for i in range(0, len(encoded), width):
            out += encoded[i:i + width]
            out += eol
    return out


def encode_qp(data):
    """Quoted-printable for a text body; the result is CRLF-terminated 7-bit."""
    text = to_lf(canonical(data))
    out = binascii.b2a_qp(text, quotetabs=False, istext=True, header=False)
    lines = out.split(b"\n")
    lines = [b"=46" + line[1:] if line.startswith(b"From ") else line for line in lines]
    return canonical(b"\n".join(lines))


def needs_armour(body):
    """True if a body would not survive 7-bit mail transport unchanged.

    8-bit bytes or NULs, lines over 998 characters, trailing white space
    (relays strip it) and lines starting "From " (mbox quotes them).  Plain
    substring searches: a regular expression over 25 MB takes seconds.
    """
    if not body.isascii() or b"\x00" in body:
        return True
    if body.startswith(b"From ") or b"\nFrom " in body:
        return True
    if b" \n" in body or b"\t\n" in body or b" \r\n" in body or b"\t\r\n" in body or body.endswith((b" ", b"\t")):
        return True
    pos, size = 0, len(body)
    while pos < size:
        nl = body.find(b"\n", pos)
        if nl < 0:
            nl = size
        if nl - pos > 999:
            return True
        pos = nl + 1
    return False


def boundary_for(chunks):
    """A random boundary that occurs in none of the given chunks."""
    while True:
        boundary = "=-mailseal-" + os.urandom(12).hex()
        marker = boundary.encode()
        if not any(marker in c for c in flat(chunks)):
            return boundary


def is_content_header(header):
    return header.lname.startswith(_CONTENT_HEADERS)


def split_outer_inner(entity, armour=False, protect=None):
    """Split a message into (outer header fields, inner entity bytes).

    The inner entity carries the Content-* fields and the body; everything
    else (From, To, Subject, ...) stays outside the cryptographic layer.
    MIME-Version is dropped: the caller writes its own.  A message without
    Content-Type gets an explicit text/plain one.  The inner entity is
    canonical (see prepare), a list of chunks; with armour it is also
    7-bit safe.  protect ("clear" or "cipher"): header protection, see
    mailseal.protection; the outer fields then come as raw bytes.
    """
    outer = [h for h in entity.headers if not is_content_header(h) and h.lname != "mime-version"]
    fields = [h.raw for h in entity.headers if is_content_header(h)]
    if entity.get("Content-Type") is None:
        charset = "us-ascii" if entity.raw.isascii() else "utf-8"
        fields.insert(0, f"Content-Type: text/plain; charset={charset}\n".encode())
    else:  # Content-Type first, where header protection adds its parameter
        fields.sort(key=lambda f: not f.lower().startswith(b"content-type:"))
    if protect:
        from .protection import protect as protected

        outer, fields = protected(entity, outer, fields, protect)
    return outer, prepare(entity, armour, fields)


def prepare(entity, armour=False, fields=None):
    """An entity in canonical form, ready to be signed or encrypted, as chunks.

    Text (and anything already base64 or quoted-printable) gets CRLF line
    endings.  A non-text part sent 8bit or binary is base64-encoded from its
    exact bytes, since changing its line endings would corrupt it.  With
    armour (before a clear signature, which relays must not touch) unsafe
    text becomes quoted-printable.  Multiparts and message/rfc822 are
    handled part by part; bytes already safe are only re-ended.  The result
    is a chunk list whose large parts are Lazy: nothing large is copied whole.
    """
    return _prepare(entity, entity.raw, entity.body_start, len(entity.raw), armour, fields)


def _part_at(raw, begin, end, depth):
    """(Entity holding only the header of the part raw[begin:end], where its body starts in raw).

    The part's body is not copied: for a 25 MB attachment, parsing its
    header should not cost 25 MB."""
    blank = [i for i in (raw.find(b"\n\n", begin, end), raw.find(b"\n\r\n", begin, end)) if i >= 0]
    if raw.startswith(b"\n", begin) or raw.startswith(b"\r\n", begin) or not blank:
        part = Entity(raw[begin:end], strict=False, depth=depth)  # no header, or no body: small or rare
        return part, begin + part.body_start, part
    head_end = min(blank) + (2 if raw[min(blank) + 1:min(blank) + 2] == b"\n" else 3)
    part = Entity(raw[begin:head_end], strict=False, depth=depth)
    if part.body_start == 0:  # its "header" is not one: all of it is body
        part = Entity(raw[begin:end], strict=False, depth=depth)
        return part, begin, part
    return part, begin + part.body_start, None


def _prepare(entity, raw, start, end, armour, fields):
    """prepare() for the entity whose header is `entity` and whose body is raw[start:end]."""
    if entity.depth > MAX_DEPTH:
        raise LimitExceeded(f"MIME nesting deeper than {MAX_DEPTH} levels")
    fields = [h.raw for h in entity.headers] if fields is None else fields
    ctype, cte = entity.ctype, entity.transfer_encoding
    boundary = entity.param("boundary")
    if entity.is_multipart and boundary:
        try:
            spans, _ = split_multipart(raw, boundary.encode("utf-8", "surrogateescape"), start, end)
        except NotAMessage:
            spans = None
        if spans is not None:
            out = [header_block(fields) + CRLF]
            prev = start
            for begin, stop in spans:
                out += canonical_region(raw, prev, begin)
                out += _prepare_part(raw, begin, stop, entity.depth + 1, armour)
                prev = stop
            out += canonical_region(raw, prev, end)
            return out
    if ctype == "message/rfc822" and cte in ("7bit", "8bit", "binary"):
        return [header_block(fields) + CRLF, *_prepare_part(raw, start, end, entity.depth + 1, armour)]
    if cte in ("8bit", "binary") and not ctype.startswith("text/") and not ctype.startswith("message/"):
        fields = [f for f in fields if not f.lower().startswith(b"content-transfer-encoding")]
        return [header_block(fields + [b"Content-Transfer-Encoding: base64\r\n"]) + CRLF,
                base64_lazy([memoryview(raw)[start:end]])]
    if armour and cte not in ("base64", "quoted-printable"):
        text = canonical(raw[start:end])
        if needs_armour(text):
            fields = [f for f in fields if not f.lower().startswith(b"content-transfer-encoding")]
            return [header_block(fields + [b"Content-Transfer-Encoding: quoted-printable\r\n"]) + CRLF,
                    encode_qp(text)]
        return [header_block(fields) + CRLF, text]
    return [header_block(fields) + CRLF, *canonical_region(raw, start, end)]


def _prepare_part(raw, begin, end, depth, armour):
    part, body_start, whole = _part_at(raw, begin, end, depth)
    if whole is not None:
        return _prepare(whole, whole.raw, whole.body_start, len(whole.raw), armour, None)
    return _prepare(part, raw, body_start, end, armour, None)


def _ensure_eol(raw):
    return raw if raw.endswith(b"\n") else raw + b"\n"


def header_block(fields):
    """Join raw header fields (Header objects or bytes) into CRLF lines."""
    out = bytearray()
    for f in fields:
        raw = f.raw if isinstance(f, Header) else f
        out += _ensure_eol(raw)
    return canonical(bytes(out))


def smime_part(smime_type, der, name="smime.p7m"):
    """Content fields and base64 body of an application/pkcs7-mime entity, as chunks."""
    head = (f"Content-Type: application/pkcs7-mime; smime-type={smime_type}; name=\"{name}\"\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            f"Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n").encode()
    return [head, base64_lazy(der if isinstance(der, (list, tuple)) else [der])]


def assemble(outer_fields, entity, eol=CRLF):
    """A whole message as chunks: outer header fields, MIME-Version, the entity.

    entity is bytes, a chunk list, or an iterator of chunks (CRLF) made
    while the output is written.  The output uses `eol` line endings, the
    input's own convention (converted a megabyte at a time as the chunks
    are consumed); write the chunks in order, or join() them.
    """
    head = header_block(outer_fields) + b"MIME-Version: 1.0\r\n"
    if isinstance(entity, (bytes, bytearray, memoryview)):
        chunks = [head, entity]
    elif isinstance(entity, (list, tuple)):
        chunks = [head, *entity]
    else:
        chunks = itertools.chain([head], entity)
    return chunks if eol == CRLF else lf_chunks(chunks)


def crlf_chunks(chunks):
    """canonical() over a sequence of chunks, one at a time (a CR at a chunk's end waits for the next)."""
    carry = b""
    for chunk in flat(chunks):
        piece = carry + bytes(chunk)
        carry = b""
        if piece.endswith(b"\r"):
            carry, piece = b"\r", piece[:-1]
        yield canonical(piece)
    if carry:
        yield CRLF


_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_DATE = re.compile(r"(\d{1,2})\s+([A-Za-z]{3})[a-z]*\s+(\d{2,4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([+-]\d{4})?")


def parse_date(value):
    """An RFC 5322 date (the Date header) as an aware UTC datetime, or None.

    A small parser instead of email.utils: importing that costs a filter
    about 30 ms.  Obsolete zone names count as UTC.
    """
    from datetime import datetime, timedelta, timezone

    match = _DATE.search(value or "")
    if not match:
        return None
    day, month, year, hour, minute, second, zone = match.groups()
    month = _MONTHS.get(month.lower())
    year = int(year)
    year += 2000 if year < 50 else (1900 if year < 100 else 0)
    try:
        moment = datetime(year, month or 0, int(day), int(hour), int(minute), int(second or 0), tzinfo=timezone.utc)
    except (ValueError, TypeError):
        return None
    if zone:
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
        moment -= offset if zone[0] == "+" else -offset
    return moment


def parse_message(raw):
    """Parse a whole message; empty or header-less input is NotAMessage."""
    if not raw or raw.isspace():  # (strip() would copy a large message)
        raise NotAMessage("input is empty")
    return Entity(raw, strict=True)
