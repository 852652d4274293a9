"""Mail addresses: pull addr-specs out of header fields and compare them.

A small strict parser instead of email.utils.getaddresses: the binding of a
signer to From is a security decision, and getaddresses has been fooled by
display names that contain addresses (CVE-2023-27043).  Here a display name
never yields an address: only the angle-addr, or a bare addr-spec, does.
"""


def _split_top(value, sep=","):
    """Split at `sep` outside quoted strings, comments and angle brackets."""
    items, buf = [], []
    quoted = escape = False
    depth = angle = 0
    for ch in value:
        if escape:
            buf.append(ch)
            escape = False
            continue
        if ch == "\\" and (quoted or depth):
            escape = True
            buf.append(ch)
            continue
        if quoted:
            quoted = ch != '"'
        elif ch == '"' and not depth:
            quoted = True
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif ch == "<" and not depth:
            angle += 1
        elif ch == ">" and not depth and angle:
            angle -= 1
        elif ch == sep and not depth and not angle:
            items.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    items.append("".join(buf))
    return items


def _strip_quoted_and_comments(text):
    """Remove quoted strings and comments; return (rest, angle-addr or None)."""
    out = []
    quoted = escape = False
    depth = 0
    for ch in text:
        if escape:
            escape = False
            continue
        if ch == "\\" and (quoted or depth):
            escape = True
            continue
        if quoted:
            quoted = ch != '"'
            continue
        if ch == '"' and not depth:
            quoted = True
            continue
        if ch == "(":
            depth += 1
            continue
        if ch == ")" and depth:
            depth -= 1
            continue
        if depth:
            continue
        out.append(ch)
    return "".join(out)


def parse(value):
    """addr-specs in one address-list header value, in order (group syntax too)."""
    found = []
    if not value:
        return found
    for item in _split_top(value):
        # "group: a@b, c@d;" -- drop the group name
        rest = _strip_quoted_and_comments(item)
        if ":" in rest and "<" not in rest.split(":", 1)[0] and "@" not in rest.split(":", 1)[0]:
            rest = rest.split(":", 1)[1]
        rest = rest.replace(";", " ")
        if "<" in rest and ">" in rest[rest.index("<"):]:
            addr = rest[rest.rindex("<") + 1:]
            addr = addr[:addr.index(">")] if ">" in addr else addr
            # route syntax <@relay:user@host>
            if ":" in addr:
                addr = addr.rsplit(":", 1)[1]
        else:
            words = rest.split()
            addr = words[0] if len(words) == 1 else ""
        addr = addr.strip()
        if addr.count("@") == 1 and addr[0] != "@" and addr[-1] != "@":
            found.append(addr)
    return found


def normalize(addr):
    """The form addresses are compared and stored in: case-folded, IDNA domain."""
    addr = addr.strip().strip("<>").strip()
    local, _, domain = addr.rpartition("@")
    if not local:
        return addr.lower()
    domain = domain.rstrip(".").lower()
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    return f"{local.lower()}@{domain}"


def same(a, b):
    return normalize(a) == normalize(b)


def header_addresses(entity, *names):
    """Normalised addresses in the named header fields of an entity, in order."""
    out = []
    for name in names:
        for value in entity.get_all(name):
            for addr in parse(value):
                norm = normalize(addr)
                if norm not in out:
                    out.append(norm)
    return out
