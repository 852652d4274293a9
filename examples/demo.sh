#!/bin/sh
# mailseal demo, run by `make demo`: a throwaway CA issues identities to Alice
# and Bob; Alice signs and encrypts a message to Bob; Bob decrypts and
# verifies it.  Everything happens in a temporary directory that is removed
# at the end; the programs must be on PATH (make demo puts .venv/bin first).
set -eu

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export MAILSEAL_CONFIG="$work/no-config.toml"
say() { printf '\n== %s\n' "$*"; }

say "A throwaway CA issues S/MIME identities (PKCS#12) to alice@example.org and bob@example.org"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 \
    -subj "/O=mailseal demo/CN=mailseal demo CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
for who in alice bob; do
    printf 'subjectAltName=email:%s@example.org\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\n' \
        "$who" > "$who.ext"
    openssl req -newkey rsa:2048 -nodes -keyout "$who.key" -out "$who.csr" -subj "/O=mailseal demo/CN=$who" 2>/dev/null
    openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
        -extfile "$who.ext" -out "$who.pem" 2>/dev/null
    openssl pkcs12 -export -in "$who.pem" -inkey "$who.key" -certfile ca.pem -passout pass:demo-pass \
        -out "$who.p12"
done
echo demo-pass > passphrase

say "Alice imports her identity, trusts the CA and installs Bob's certificate"
export MAILSEAL_HOME="$work/alice"
smime-trust identity import --passphrase-file passphrase alice.p12
smime-trust install --ca ca.pem
smime-trust install bob.pem

say "Alice writes to Bob, then signs and encrypts (smime-encrypt --sign)"
cat > message.eml <<MAIL
From: Alice <alice@example.org>
To: Bob <bob@example.org>
Subject: Lunch on Thursday?
Date: $(LC_ALL=C date -R)
Message-ID: <demo-1@example.org>
Content-Type: text/plain; charset=utf-8

Hi Bob,

shall we try the new place on Thursday? Grüße, Alice
MAIL
smime-encrypt --sign --passphrase-file passphrase < message.eml > encrypted.eml
sed -n '1,/^$/p' encrypted.eml
echo "... $(wc -c < encrypted.eml) bytes, the text is not readable in it: $(grep -c 'new place' encrypted.eml || true) matches"

say "Sending to carol@example.org, whose certificate Alice does not have, is refused"
sed 's/^To: .*/To: carol@example.org/' message.eml > to-carol.eml
if smime-encrypt --sign --passphrase-file passphrase < to-carol.eml > refused.eml; then
    echo "unexpected: this should have failed"; exit 1
else
    echo "exit code $?, and $(wc -c < refused.eml) bytes were written"
fi

say "Bob imports his identity and trusts the CA"
export MAILSEAL_HOME="$work/bob"
smime-trust identity import --passphrase-file passphrase bob.p12
smime-trust install --ca ca.pem

say "Bob decrypts and verifies (smime-decrypt --verify): the verdict goes to stderr"
smime-decrypt --verify --passphrase-file passphrase < encrypted.eml > decrypted.eml
echo "exit code $? (0 = trusted)"
echo "-- the decrypted message:"
cat decrypted.eml

say "What a pager shows (smime-decrypt --display)"
smime-decrypt --display --passphrase-file passphrase < encrypted.eml

say "A forged copy: the signed text changed after signing (smime-verify)"
MAILSEAL_HOME="$work/alice" smime-sign --passphrase-file passphrase < message.eml > signed.eml
sed 's/Thursday/Friday/' signed.eml > forged.eml
smime-verify < signed.eml
if smime-verify < forged.eml; then echo "unexpected: verified"; exit 1; else echo "exit code $? (5 = bad)"; fi
