#!/usr/bin/env bash
# Creates the hub's topics, its SCRAM users and ACLs on Apache Kafka with Kafka's own CLI tools.
#   BOOTSTRAP=host:9092 YISHI_PARTITIONS=12 KAFKA_BIN=/opt/kafka/bin deploy/provision-topics.sh
# Optional, for a secured cluster (deploy/compose.yaml sets them):
#   ADMIN_PEM=admin.pem CA_PEM=ca.pem  connect as User:admin over TLS with a client certificate
#                                      (PEM file with key and certificate; ca.pem signed the brokers)
#   PASSWORD_DIR=dir                   create a SCRAM-SHA-512 user for every principal below whose
#                                      <dir>/kafka-password-<principal> (or <dir>/<principal>.password) exists;
#                                      passwords go to kafka-configs.sh in a mode-0600 file, never as arguments
# Topics mirror HubTopics.all (Sources/YishiKafka/KafkaAdmin.swift); ACLs mirror
# SourcePolicy.standard (Sources/Messaging/SourcePolicy.swift) and the consumer groups and
# transactional ids of HubGroups. Principals (User:<name>): orchestrator, frontdesk, operator,
# adapter-<agency>, dept-<agency> — the SASL user names of deploy/compose.yaml and deploy/k8s/.
set -euo pipefail
: "${BOOTSTRAP:?set BOOTSTRAP}"
PREFIX="${YISHI_TOPIC_PREFIX:-yishi.}"
PARTITIONS="${YISHI_PARTITIONS:-12}"
RF="${YISHI_REPLICATION:-3}"
BIN="${KAFKA_BIN:-/opt/kafka/bin}"
# One per adapters/<agency>/catalogue.json (`yishi adapters validate` lists them); tests check they agree.
AGENCIES=(business-registration seal-engraving tax social-security bank housing-fund)
PRINCIPALS=(orchestrator frontdesk operator)
for a in "${AGENCIES[@]}"; do PRINCIPALS+=("adapter-$a" "dept-$a"); done

WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT; chmod 700 "$WORK"
CONNECT=(--bootstrap-server "$BOOTSTRAP")
if [[ -n "${ADMIN_PEM:-}" ]]; then
  cat > "$WORK/admin.properties" <<EOF
security.protocol=SSL
ssl.keystore.type=PEM
ssl.keystore.location=$ADMIN_PEM
ssl.truststore.type=PEM
ssl.truststore.location=${CA_PEM:?set CA_PEM with ADMIN_PEM}
EOF
  CONNECT+=(--command-config "$WORK/admin.properties")
fi

topic() {  # name [extra --config args]
  local name="$PREFIX$1"; shift
  "$BIN/kafka-topics.sh" "${CONNECT[@]}" --create --if-not-exists --topic "$name" \
    --partitions "$PARTITIONS" --replication-factor "$RF" --config min.insync.replicas=2 "$@"
}
acl() {  # principal operation topic
  "$BIN/kafka-acls.sh" "${CONNECT[@]}" --add --allow-principal "User:$1" --operation "$2" --topic "$PREFIX$3"
}
prefixed() {  # principal resource-flag name operation...
  local who=$1 kind=$2 name=$3; shift 3
  local ops=(); for op in "$@"; do ops+=(--operation "$op"); done
  "$BIN/kafka-acls.sh" "${CONNECT[@]}" --add --allow-principal "User:$who" "${ops[@]}" "$kind" "$name" --resource-pattern-type prefixed
}

# Retention per topic (docs/operations.md, "Retention"):
# - saga-events, audit-heads: the audit trail (全程留痕) of every saga ever run; never deleted by time.
# - saga-state: compacted; the newest record per saga is its live state or, once it finished and left
#   the orchestrator's hot state, its small finished summary, which compaction keeps for ever (it answers a
#   re-submitted application id with "already finished"). Not deleted by time, or that answer would be lost.
# - saga-snapshots: the orchestrator's snapshots of its live set; only the newest per partition is
#   read, so a week is ample (a restore without one reads the whole saga-state partition, slower but correct).
# - everything else: the broker's default retention (7 days): in-flight messages.
for t in applications progress ops ops-replies ops-audit dlq; do topic "$t"; done
topic saga-events --config retention.ms=-1
topic audit-heads --config retention.ms=-1
topic saga-state --config cleanup.policy=compact --config retention.ms=-1
topic saga-snapshots --config cleanup.policy=delete --config retention.ms=604800000
topic licences --config cleanup.policy=compact
for a in "${AGENCIES[@]}"; do
  for t in "commands.$a" "dept.$a.requests" "dept.$a.replies" "events.$a"; do topic "$t"; done
done

# SCRAM-SHA-512 users, one per writer.
if [[ -n "${PASSWORD_DIR:-}" ]]; then
  for p in "${PRINCIPALS[@]}"; do
    file="$PASSWORD_DIR/kafka-password-$p"; [[ -f "$file" ]] || file="$PASSWORD_DIR/$p.password"
    [[ -f "$file" ]] || { echo "no password file for $p in $PASSWORD_DIR; user not created" >&2; continue; }
    (umask 077; printf 'SCRAM-SHA-512=[password=%s]\n' "$(tr -d '\n' < "$file")" > "$WORK/scram.properties")
    "$BIN/kafka-configs.sh" "${CONNECT[@]}" --alter --entity-type users --entity-name "$p" --add-config-file "$WORK/scram.properties"
    rm -f "$WORK/scram.properties"
  done
fi

# Every hub service checks its topics at start (metadata; ensureTopics creates none that exist):
# each principal may describe the hub's topics.
for p in "${PRINCIPALS[@]}"; do prefixed "$p" --topic "$PREFIX" Describe; done

# Who may write what (reads are granted to the consumers of each topic).
acl frontdesk Write applications
acl frontdesk Read saga-events
prefixed frontdesk --group "${PREFIX}frontdesk-" Read Describe
for t in saga-state saga-snapshots saga-events audit-heads progress licences ops-replies dlq; do acl orchestrator Write "$t"; done
for a in "${AGENCIES[@]}"; do
  acl orchestrator Write "commands.$a"
  acl orchestrator Read "events.$a"
  acl "adapter-$a" Read "commands.$a"
  acl "adapter-$a" Write "dept.$a.requests"
  acl "adapter-$a" Read "dept.$a.replies"
  acl "adapter-$a" Write "events.$a"
  acl "adapter-$a" Write dlq
  # group <prefix>adapter.<agency>; transactional ids <prefix>adapter.<agency>-<instance>
  prefixed "adapter-$a" --group "${PREFIX}adapter.$a" Read Describe
  prefixed "adapter-$a" --transactional-id "${PREFIX}adapter.$a" Write Describe
  acl "dept-$a" Read "dept.$a.requests"
  acl "dept-$a" Write "dept.$a.replies"
  acl "dept-$a" Write dlq
  prefixed "dept-$a" --group "${PREFIX}dept.$a" Read Describe
done
for t in applications ops saga-state saga-snapshots licences; do acl orchestrator Read "$t"; done
# The orchestrator's consumer groups (main, restore, licences) and transactional ids share its group name.
prefixed orchestrator --group "${PREFIX}orchestrator" All
prefixed orchestrator --transactional-id "${PREFIX}orchestrator" Write Describe
acl operator Write ops
acl operator Write ops-audit
for t in ops-replies saga-events saga-state audit-heads progress dlq; do acl operator Read "$t"; done
prefixed operator --group yishi-ctl- Read Describe
echo "provisioned topics, users and ACLs with prefix '$PREFIX' ($PARTITIONS partitions, replication $RF)"
