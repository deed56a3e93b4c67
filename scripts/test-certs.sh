#!/usr/bin/env bash
# A private test PKI for the TLS tests (issue 12): never for production.
#
#   scripts/test-certs.sh [DIR]     (default .run/certs; prints DIR)
#
# Writes, with openssl, EC P-256 keys and PEM files:
#   ca.pem, ca-key.pem                  "Stompbox Test CA", the root every test trusts
#   server.pem, server-key.pem          leaf for localhost / 127.0.0.1 / ::1 (chain: leaf then CA)
#   server2.pem, server2-key.pem        a second leaf for the same names (certificate reload tests)
#   client-alice.pem, client-alice-key.pem   client certificate, CN=alice (and SAN email alice@test)
#   client-bob.pem, client-bob-key.pem       client certificate, CN=bob
#   other-ca.pem, other-ca-key.pem      an unrelated CA nobody trusts
#   client-mallory.pem, client-mallory-key.pem  CN=mallory, signed by other-ca (must be refused)
# Idempotent: an existing directory with every file, whose certificates are valid for another
# day, is left as it is. Keys are 0600 (PostgreSQL refuses a key others can read).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-$PWD/.run/certs}"
mkdir -p "$dir"
cd "$dir"

files=(ca.pem ca-key.pem server.pem server-key.pem server2.pem server2-key.pem
    client-alice.pem client-alice-key.pem client-bob.pem client-bob-key.pem
    other-ca.pem other-ca-key.pem client-mallory.pem client-mallory-key.pem)
fresh=1
for f in "${files[@]}"; do
    [[ -s "$f" ]] || { fresh=0; break; }
done
if (( fresh )) && openssl x509 -checkend 86400 -noout -in server.pem >/dev/null 2>&1; then
    echo "$dir"
    exit 0
fi

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; chmod 600 "$1"; }

ca() { # name subject
    key "$1-key.pem"
    openssl req -x509 -new -key "$1-key.pem" -sha256 -days 30 -subj "$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$1.pem" 2>/dev/null
}

leaf() { # name subject issuer extensions...
    local name=$1 subject=$2 issuer=$3
    shift 3
    key "$name-key.pem"
    openssl req -new -key "$name-key.pem" -subj "$subject" -out "$name.csr" 2>/dev/null
    printf '%s\n' "$@" >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA "$issuer.pem" -CAkey "$issuer-key.pem" -CAcreateserial \
        -days 30 -sha256 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
    # The chain a server presents: its leaf, then the issuer.
    cat "$name.crt" "$issuer.pem" >"$name.pem"
    rm -f "$name.csr" "$name.ext" "$name.crt"
}

server_ext=("basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature"
    "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1")
client_ext() { printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=clientAuth" "subjectAltName=email:$1@test"; }

ca ca "/CN=Stompbox Test CA"
ca other-ca "/CN=Untrusted Test CA"
leaf server "/CN=localhost" ca "${server_ext[@]}"
leaf server2 "/CN=localhost/O=second" ca "${server_ext[@]}"
mapfile -t alice_ext < <(client_ext alice)
mapfile -t bob_ext < <(client_ext bob)
mapfile -t mallory_ext < <(client_ext mallory)
leaf client-alice "/CN=alice" ca "${alice_ext[@]}"
leaf client-bob "/CN=bob" ca "${bob_ext[@]}"
leaf client-mallory "/CN=mallory" other-ca "${mallory_ext[@]}"
rm -f ./*.srl
echo "$dir"
