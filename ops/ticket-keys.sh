#!/bin/sh
# Session-ticket keys shared by several hemsd nodes (tls.ticket_key_file, docs/tls.md).
#
#   ops/ticket-keys.sh FILE   creates FILE with one fresh key, or rotates it: a fresh key on
#                             the first line (seals new tickets), the current key on the
#                             second (still opens the tickets it sealed), the older one dropped.
#
# Then copy FILE to every node (mode 0600, owned by hemsd's user) and send each SIGHUP. Rotate
# about once per tls.ticket_key_rotate_s; a ticket lives two periods. Between the first and
# the last node's reload, a ticket sealed by an updated node makes a full handshake on a node
# not yet updated (nothing fails). Each key is 96 hex digits: a 16-byte name, a 32-byte
# AES-256-GCM key.
set -eu
file=${1:?usage: ops/ticket-keys.sh FILE}
umask 077
new=$(openssl rand -hex 48)
tmp="$file.tmp.$$"
{
    echo "# hemsd session-ticket keys: the first seals, the second still opens"
    echo "$new"
    if [ -f "$file" ]; then grep -E '^[0-9a-fA-F]{96}$' "$file" | head -n 1; fi
} >"$tmp"
mv "$tmp" "$file"
