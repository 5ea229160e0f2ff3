#!/usr/bin/env bash
# Makes deploy/secrets/ for deploy/compose.yaml (and the files for the Kubernetes Secrets):
#   ca.pem, ca.key                     a CA for the brokers' and the admin's certificates
#   broker.pem                         the brokers' key + certificate (CN=kafka-broker; SANs kafka-1..3, kafka-N.kafka)
#   admin.pem                          the provisioning admin's key + certificate (CN=admin, TLS client login)
#   <principal>.password               a random SCRAM-SHA-512 password per principal
# Existing files are kept (run it again to add what is missing). The folder is mode 0700; the files
# are 0644 so that containers running as another user (the Kafka image runs as uid 1000) can read
# them through compose's bind-mounted secrets. Never commit the folder (.gitignore has it).
set -euo pipefail
DIR="${1:-$(dirname "$0")/secrets}"
mkdir -p "$DIR"; chmod 700 "$DIR"; cd "$DIR"
umask 022
# One per adapters/<agency>/catalogue.json (`yishi adapters validate` lists them); tests check they agree.
AGENCIES=(business-registration seal-engraving tax social-security bank housing-fund)
PRINCIPALS=(orchestrator frontdesk operator)
for a in "${AGENCIES[@]}"; do PRINCIPALS+=("adapter-$a" "dept-$a"); done

if [[ ! -f ca.pem ]]; then
  openssl req -x509 -newkey rsa:3072 -nodes -days 825 -subj "/CN=yishi-kafka-ca" -keyout ca.key -out ca.pem 2>/dev/null
  chmod 600 ca.key
fi
cert() {  # name CN SAN
  [[ -f "$1.pem" ]] && return 0
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.key" 2>/dev/null
  openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  cat "$1.key" "$1.crt" > "$1.pem"   # PKCS#8 key, then the certificate: Kafka's PEM key store
  rm -f "$1.key" "$1.csr" "$1.ext" "$1.crt"
}
cert broker kafka-broker "DNS:kafka-1,DNS:kafka-2,DNS:kafka-3,DNS:kafka-0.kafka,DNS:kafka-1.kafka,DNS:kafka-2.kafka"
cert admin admin "DNS:admin"
for p in "${PRINCIPALS[@]}"; do
  [[ -f "$p.password" ]] || openssl rand -hex 24 | tr -d '\n' > "$p.password"
done
echo "secrets in $(pwd): ca.pem broker.pem admin.pem and ${#PRINCIPALS[@]} passwords"
