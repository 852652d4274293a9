#!/bin/sh
# Saved searches over the tags smime-import sets, as notmuch named queries:
# afterwards `notmuch search query:smime-untrusted` lists mail whose signer
# you have not trusted yet, and every notmuch front end can show them:
#   neomutt:  virtual-mailboxes "Untrusted signers" "notmuch://?query=query:smime-untrusted"
#   aerc:     add  Untrusted signers=query:smime-untrusted  to the account's query-map file
#   emacs:    notmuch-saved-searches (:name "untrusted signers" :query "query:smime-untrusted")
# Run once; the queries live in notmuch's configuration.
set -eu

notmuch config set query.smime-untrusted 'tag:smime-untrusted'
notmuch config set query.smime-changed 'tag:smime-changed'
notmuch config set query.smime-bad 'tag:smime-bad'
notmuch config set query.smime-encrypted 'tag:smime-encrypted'
