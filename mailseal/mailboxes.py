"""Where batches of messages come from: maildirs, mbox files, notmuch queries.

Each source yields (label, raw bytes) one message at a time, so a mailbox
of any size is read with the memory of its largest message.
"""

import os

from .errors import FileProblem

#: the notmuch query for "new mail with S/MIME in it" (both MIME type spellings)
NOTMUCH_NEW = ("tag:new and (mimetype:application/pkcs7-signature or mimetype:application/x-pkcs7-signature"
               " or mimetype:application/pkcs7-mime or mimetype:application/x-pkcs7-mime)")


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise FileProblem(f"cannot read {path}: {exc.strerror}") from None


def maildir_files(top):
    """Every message file of a maildir (and its Maildir++ subfolders), sorted."""
    if not os.path.isdir(top):
        raise FileProblem(f"{top} is not a directory")
    found = []
    for folder, dirs, files in os.walk(top):
        dirs.sort()
        if os.path.basename(folder) in ("cur", "new"):
            found += [os.path.join(folder, f) for f in sorted(files) if not f.startswith(".")]
    return found


def read_or_none(path):
    """A message file's bytes, or None when it vanished or cannot be read (a batch goes on)."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def mbox(path):
    """The messages of an mbox file, as stored (without the "From " separator line)."""
    import mailbox

    if not os.path.isfile(path):
        raise FileProblem(f"{path} is not a file")
    box = mailbox.mbox(path, create=False)
    try:
        for n, key in enumerate(box.iterkeys(), 1):
            yield f"{path}#{n}", box.get_bytes(key)
    finally:
        box.close()


class Notmuch:
    """A notmuch database opened for tagging, through notmuch2."""

    def __init__(self):
        try:
            import notmuch2
        except ImportError:
            raise FileProblem("--notmuch needs the notmuch2 Python binding (pip install notmuch2,"
                              " with libnotmuch-dev)") from None
        self._notmuch2 = notmuch2
        try:
            self.db = notmuch2.Database(mode=notmuch2.Database.MODE.READ_WRITE)
        except notmuch2.NotmuchError as exc:
            raise FileProblem(f"cannot open the notmuch database read-write: {exc}") from None

    def ids(self, query):
        try:
            return [m.messageid for m in self.db.messages(query)]
        except self._notmuch2.NotmuchError as exc:
            raise FileProblem(f"notmuch query {query!r} failed: {exc}") from None

    def paths(self, ids):
        """(message id, path of one of its files) of each id still in the database."""
        for message_id in ids:
            try:
                message = self.db.find(message_id)
            except LookupError:
                continue
            yield message_id, str(message.path)

    def messages(self, ids):
        for message_id, path in self.paths(ids):
            yield message_id, path, read_or_none(path)

    def retag(self, message_id, tags, managed):
        """Set exactly `tags` among the `managed` ones, in one atomic change."""
        message = self.db.find(message_id)
        with self.db.atomic():
            with message.frozen():
                for tag in managed - tags:
                    message.tags.discard(tag)
                for tag in tags:
                    message.tags.add(tag)

    def close(self):
        self.db.close()
