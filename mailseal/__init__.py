"""mailseal: S/MIME for people who read mail in mutt, neomutt, aerc and notmuch.

The library every mailseal program shares.  Programs in filters/, hooks/ and
bin/ parse their arguments and call one function here; the logic lives in
one module per concern (mime, cms, certs, store, identity, verification,
...).  Modules import what they need lazily: a filter's start-up time is
what a mail client's user feels.
"""

__version__ = "0.1.0"
