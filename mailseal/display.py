"""What a pager shows: a one-line verdict banner, then readable content.

Used by --display (aerc filters, mutt's display_filter, less): the banner
says the verdict with its signer and reason; the content is the text of the
verified (and decrypted) entity, with attachments listed, never executed.
"""

from . import certs, mime
from .verification import VERDICTS

CIPHER_NAMES = {"aes128_cbc": "AES-128-CBC", "aes192_cbc": "AES-192-CBC", "aes256_cbc": "AES-256-CBC",
                "tripledes_3key": "3DES", "aes128_gcm": "AES-128-GCM", "aes256_gcm": "AES-256-GCM",
                "aes192_gcm": "AES-192-GCM", "chacha20_poly1305": "ChaCha20-Poly1305"}


def banner(reading=None, verdict=None, error=None):
    """One line: mark, verdict, signer, reason (and encryption)."""
    if error is not None:
        return f"✗ mailseal: {error.one_line()}"
    verdict = verdict or reading.verdict
    mark = VERDICTS[verdict.verdict][1]
    text = f"{mark} {verdict.verdict}"
    if verdict.signer is not None:
        who = ", ".join(certs.emails(verdict.signer)) or certs.common_name(verdict.signer)
        text += f": signed by {who}"
        if verdict.signing_time is not None:
            text += f" on {verdict.signing_time:%Y-%m-%d %H:%M} UTC"
    if verdict.reasons:
        text += f" — {verdict.reasons[0]}"
    if reading is not None:
        d = reading.decryption
        if d is not None:
            text += f" · encrypted ({CIPHER_NAMES.get(d.cipher, d.cipher)}"
            if d.authenticated:
                text += ", authenticated)"
            elif reading.content_authenticated:  # a valid signature inside covers it
                text += ")"
            else:  # EFAIL: CBC without a signature can be changed on the way without anyone noticing
                text += ", NOT authenticated: it may have been altered)"
    return BANNER_PREFIX + text


BANNER_PREFIX = "[mailseal] "


def _visible(char):
    """A character as it may reach a terminal: control and invisible format characters are shown
    as escapes (an ESC sequence could move the cursor onto the real banner)."""
    import unicodedata

    if char in "\n\t":
        return char
    category = unicodedata.category(char)
    if category == "Cc":
        return f"\\x{ord(char):02x}"
    if category == "Cf":
        return f"<U+{ord(char):04X}>"
    return char


def _defuse(text):
    """Content as a terminal will show it, with lines that look like mailseal's own banner marked
    as the message's text, so that no message can draw a verdict of its own (UI redressing)."""
    text = "".join(_visible(c) for c in text) if not text.isprintable() else text
    return "\n".join("(message text) " + line if BANNER_PREFIX.strip() in line else line
                     for line in text.split("\n"))


def details(reading):
    """The remaining reasons and notes, one per line, for a pager."""
    verdict = reading.verdict
    lines = [f"  {r}" for r in verdict.reasons[1:]]
    lines += [f"  note: {n}" for n in verdict.notes + reading.notes]
    if reading.decryption is not None:
        lines += [f"  note: {n}" for n in reading.decryption.notes]
    if verdict.signer is not None:
        fp = certs.fingerprint(verdict.signer)
        lines.append(f"  signer: {verdict.signer.subject.rfc4514_string()}; issuer:"
                     f" {verdict.signer.issuer.rfc4514_string()}; SHA-256 {fp[:16]}…")
    return lines


def _text(entity):
    data = entity.decoded_body()
    charset = entity.param("charset") or "utf-8"
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def render(entity, depth=0):
    """Readable text of an entity: text parts inline, other parts listed."""
    if depth > mime.MAX_DEPTH:
        return "[nesting too deep]\n"
    ctype = entity.ctype
    try:
        if entity.is_multipart:
            from .protection import is_legacy_display

            parts = [p for p in entity.parts() if not is_legacy_display(p)]  # RFC 9788 4.5: shown above
            if ctype == "multipart/alternative":
                plain = [p for p in parts if p.ctype == "text/plain"]
                return render(plain[0] if plain else parts[-1], depth + 1)
            return "\n".join(render(p, depth + 1) for p in parts)
        if ctype == "message/rfc822":
            inner = mime.Entity(entity.decoded_body(), strict=False, depth=entity.depth + 1)
            head = "".join(f"{name}: {inner.get(name)}\n" for name in ("From", "Subject", "Date") if inner.get(name))
            return f"[forwarded message]\n{head}\n{render(inner, depth + 1)}"
        if ctype.startswith("text/") and (entity.get("Content-Disposition") or "").lower()[:10] != "attachment":
            text = _text(entity).replace("\r\n", "\n")
            return text if text.endswith("\n") else text + "\n"
        size = len(entity.decoded_body())
        name = entity.filename() or "unnamed"
        return f"[attachment: {name} ({ctype}, {size} bytes)]\n"
    except Exception as exc:  # a broken part is shown as broken, never hides the rest
        return f"[part could not be shown: {exc}]\n"


def page(reading):
    """Banner, details, the protected header fields (RFC 9788) if any, a rule, then the content."""
    lines = [banner(reading)] + details(reading)
    if reading.protection is not None:
        names = reading.protection.names
        lines += [f"{names[k]}: {v}" for k, v in reading.protection.fields.items()
                  if k in ("from", "to", "cc", "subject", "date")]
    signed = {layer.path: layer for layer in reading.nested if layer.verdict is not None}
    if signed and not reading.signatures:  # partly signed: say above each text whether it is signed
        content = _render_marked(reading.entity, "", signed)
    else:
        content = render(reading.entity)
    return "\n".join(lines) + "\n" + "─" * 40 + "\n" + _defuse(content)


def _render_marked(entity, path, signed):
    """render(), each part of an unsigned container headed by whether (and by whom) it is signed."""
    try:
        parts = entity.parts()
    except Exception as exc:  # a broken part is shown as broken, never hides the rest
        return f"[part could not be shown: {exc}]\n"
    out = []
    for number, part in enumerate(parts, 1):
        where = f"{path}.{number}" if path else str(number)
        layer = signed.get(where)
        if layer is not None:
            verdict = layer.verdict
            who = ", ".join(certs.emails(verdict.signer)) if verdict.signer is not None else "an unknown signer"
            out.append(f"── part {where}: signed by {who} ({verdict.verdict}) ──\n" + render(part))
        elif part.is_multipart and part.ctype != "multipart/signed" and any(
                k.startswith(where + ".") for k in signed):
            out.append(_render_marked(part, where, signed))
        else:
            out.append(f"── part {where}: not signed ──\n" + render(part))
    return "\n".join(out)
