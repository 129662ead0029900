#!/bin/sh
# Makes a throw-away PKI for TLS tests and trials (openssl CLI only). NOT for production.
#
#   ops/make-test-pki.sh DIR [SERIAL ...]
#
# In DIR:
#   ca.pem ca.key          test CA ("HeNB vendor CA"): signs the server and device certificates
#   server-ec.pem/.key     ECDSA P-256 server certificate: localhost, hems.test, 127.0.0.1
#   server-rsa.pem/.key    RSA 2048 server certificate: serving.hems.test (SNI), 127.0.0.1
#   dev-SERIAL.pem/.key    one device certificate per SERIAL (default: SN0001 SN0002), with
#                          SubjectAltName DNS:SERIAL.hnb.hems.test and CN=SERIAL (the TS 33.320
#                          FQDN form, docs/tls.md)
#   dev-expired.pem/.key   device EXPIRED01, valid 2020-2021 only
#   dev-revoked.pem/.key   device REVOKED01, listed in crl.pem
#   dev-rogue.pem/.key     device ROGUE01, signed by rogue-ca.pem (not trusted)
#   crl.pem                the CA's CRL (revokes REVOKED01)
set -eu
dir=${1:?usage: make-test-pki.sh DIR [SERIAL ...]}
shift
[ $# -gt 0 ] || set -- SN0001 SN0002
mkdir -p "$dir"
cd "$dir"
mkdir -p db
: > db/index.txt
echo 1000 > db/serial
echo 1000 > db/crlnumber
cat > ca.cnf <<'EOF'
[ca]
default_ca = test_ca
[test_ca]
dir = .
database = db/index.txt
serial = db/serial
crlnumber = db/crlnumber
new_certs_dir = db
certificate = ca.pem
private_key = ca.key
default_md = sha256
default_days = 3650
default_crl_days = 3650
policy = any
unique_subject = no
copy_extensions = copy
[any]
commonName = supplied
organizationName = optional
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
[client]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
EOF

ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# CAs (self-signed)
for ca in ca rogue-ca; do
  ec_key $ca.key
  openssl req -new -x509 -config ca.cnf -extensions v3_ca -key $ca.key -days 3650 \
    -subj "/O=hems test/CN=$ca" -out $ca.pem
done

# sign NAME SUBJECT_CN SAN EXT [extra openssl ca args]
sign() {
  name=$1 cn=$2 san=$3 ext=$4
  shift 4
  openssl req -new -config ca.cnf -key "$name.key" -subj "/O=hems test/CN=$cn" \
    -addext "subjectAltName=$san" -out "$name.csr"
  openssl ca -batch -config ca.cnf -extensions "$ext" -notext -in "$name.csr" \
    -out "$name.pem" "$@" 2>/dev/null
  rm -f "$name.csr"
}

ec_key server-ec.key
sign server-ec hems.test "DNS:localhost,DNS:hems.test,IP:127.0.0.1" server
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out server-rsa.key 2>/dev/null
sign server-rsa serving.hems.test "DNS:serving.hems.test,IP:127.0.0.1" server

for sn in "$@"; do
  ec_key "dev-$sn.key"
  sign "dev-$sn" "$sn" "DNS:$sn.hnb.hems.test" client
done
ec_key dev-expired.key
sign dev-expired EXPIRED01 "DNS:EXPIRED01.hnb.hems.test" client \
  -startdate 20200101000000Z -enddate 20210101000000Z
ec_key dev-revoked.key
sign dev-revoked REVOKED01 "DNS:REVOKED01.hnb.hems.test" client
openssl ca -batch -config ca.cnf -revoke dev-revoked.pem 2>/dev/null
openssl ca -batch -config ca.cnf -gencrl -out crl.pem 2>/dev/null

# The rogue device: a well-formed certificate from a CA the HeMS does not trust.
ec_key dev-rogue.key
openssl req -new -config ca.cnf -key dev-rogue.key -subj "/O=hems test/CN=ROGUE01" \
  -addext "subjectAltName=DNS:ROGUE01.hnb.hems.test" -out dev-rogue.csr
openssl x509 -req -in dev-rogue.csr -CA rogue-ca.pem -CAkey rogue-ca.key -CAcreateserial \
  -days 3650 -copy_extensions copy -out dev-rogue.pem 2>/dev/null
rm -f dev-rogue.csr rogue-ca.srl
chmod 600 ./*.key
echo "test PKI in $dir"
