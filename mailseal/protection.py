"""Header protection (RFC 9788): the message's own header fields inside the cryptographic payload.

Without it, Subject, From and the rest travel outside the signature and the
encryption: anyone on the way can read the Subject of an encrypted message
or change the From of a signed one.  With it, the sender copies them into
the header of the protected entity and marks its Content-Type with
hp="cipher" (encrypted: the outside Subject becomes "[...]" and HP-Outer
fields record what the outside says) or hp="clear" (signed only: the
outside stays as it is).  A reader takes the protected fields as the true
ones and reports any difference with the outside; a legacy-display part
(text that repeats the header for clients that do not know RFC 9788) is
left out of what is shown.
"""

from dataclasses import dataclass, field

#: the fields copied inside (RFC 9788 section 2.1's "non-structural" ones that matter for mail)
PROTECTED = ("From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To", "References")
_LOWER = {name.lower(): name for name in PROTECTED}
OBSCURED_SUBJECT = "[...]"


def _line(name, value):
    return f"{name}: {value}\n".encode("utf-8", "surrogateescape")


def with_param(raw_field, name, value):
    """A raw Content-Type field with one more parameter."""
    body = raw_field.rstrip(b"\r\n")
    return body + f'; {name}="{value}"\n'.encode()


def protect(entity, outer, fields, mode):
    """(outer fields, inner fields) of a message about to be signed or encrypted, protected.

    entity: the message; outer: its fields that stay outside (Header
    objects); fields: the inner entity's raw fields (Content-Type first).
    mode: "clear" (signed only) or "cipher" (encrypted: Subject obscured).
    """
    copied = [h.raw for h in entity.headers if h.lname in _LOWER]
    if mode == "cipher":
        outside = []
        for header in outer:
            if header.lname == "subject":
                outside.append(_line("Subject", OBSCURED_SUBJECT))
            else:
                outside.append(header.raw)
        hp_outer = [b"HP-Outer: " + raw.rstrip(b"\r\n") + b"\n" for raw in outside
                    if raw.split(b":", 1)[0].strip().lower().decode("ascii", "replace") in _LOWER]
    else:
        outside, hp_outer = [h.raw for h in outer], []
    content_type = [f for f in fields if f.lower().startswith(b"content-type:")]
    rest = [f for f in fields if not f.lower().startswith(b"content-type:")]
    inner = [with_param(content_type[0], "hp", mode), *rest, *copied, *hp_outer]
    return outside, inner


@dataclass
class Protection:
    """What a protected entity says about the message's header."""

    mode: str  # "cipher" or "clear"
    fields: dict  # lower-case name -> value, as protected
    names: dict  # lower-case name -> the name as written
    notes: list = field(default_factory=list)  # differences with the outside

    def to_json(self):
        return {"mode": self.mode, "fields": {self.names[k]: v for k, v in self.fields.items()}, "notes": self.notes}


def _norm(value):
    return " ".join((value or "").split())


def read(entity, root):
    """The Protection of a message whose reached entity is entity (None when it has none)."""
    mode = (entity.param("hp") or "").lower()
    if mode not in ("cipher", "clear"):
        return None
    fields, names = {}, {}
    for header in entity.headers:
        if header.lname in _LOWER and header.lname not in fields:
            fields[header.lname], names[header.lname] = header.value, _LOWER[header.lname]
    outer_said = {}
    for value in entity.get_all("HP-Outer"):
        name, _, said = value.partition(":")
        outer_said[name.strip().lower()] = said.strip()
    protection = Protection(mode, fields, names)
    for lname, value in fields.items():
        outside = root.get(names[lname])
        if mode == "cipher" and lname in outer_said:
            expected = outer_said[lname]
            if _norm(outside) != _norm(expected):
                protection.notes.append(f"the outer {names[lname]} was changed on the way (it says"
                                        f" {outside!r}, the sender wrote {expected!r}); the protected one is shown")
        elif mode == "cipher" and lname == "subject" and _norm(outside) == OBSCURED_SUBJECT:
            continue
        elif _norm(outside) != _norm(value):
            protection.notes.append(f"the outer {names[lname]} ({outside!r}) differs from the protected one"
                                    f" ({value!r}); the protected one is shown")
    return protection


def protected_from(entity):
    """The From a protected entity carries, as it was signed (None if it carries none)."""
    if (entity.param("hp") or "").lower() not in ("cipher", "clear"):
        return None
    value = entity.get("From")
    return value


def is_legacy_display(entity):
    """A legacy-display part (RFC 9788 section 4.5): header text repeated for old clients."""
    return (entity.param("hp-legacy-display") or "").strip() == "1"


def unwrap(outer, entity):
    """(outer fields, the entity's own fields) for a decrypted or verified message's output.

    The protected values replace the outer ones (the obscured Subject gets
    its real text back), protected fields missing outside are added, and the
    copies and HP-Outer fields leave the entity's own header."""
    inside = {}
    for header in entity.headers:
        if header.lname in _LOWER and header.lname not in inside:
            inside[header.lname] = header.raw
    fields = []
    for header in outer:
        if header.lname in _LOWER:
            if header.lname in inside:
                fields.append(inside.pop(header.lname))
        else:
            fields.append(header.raw)
    fields += list(inside.values())
    own = [h.raw for h in entity.headers if h.lname not in _LOWER and h.lname != "hp-outer"]
    return fields, own
