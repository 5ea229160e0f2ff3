#!/usr/bin/env bash
# Creates the hub's topics and ACLs on Apache Kafka with its own CLI tools.
#   BOOTSTRAP=host:9092 YISHI_PARTITIONS=12 KAFKA_BIN=/opt/kafka/bin deploy/provision-topics.sh
# Topics mirror HubTopics.all (Sources/YishiKafka/KafkaAdmin.swift); ACLs mirror
# SourcePolicy.standard (Sources/Messaging/SourcePolicy.swift). Principals: User:<name>.
set -euo pipefail
: "${BOOTSTRAP:?set BOOTSTRAP}"
PREFIX="${YISHI_TOPIC_PREFIX:-yishi.}"
PARTITIONS="${YISHI_PARTITIONS:-12}"
RF="${YISHI_REPLICATION:-3}"
BIN="${KAFKA_BIN:-/opt/kafka/bin}"
AGENCIES=(business-registration seal-engraving tax social-security bank)

topic() {  # name [extra --config args]
  local name="$PREFIX$1"; shift
  "$BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$name" \
    --partitions "$PARTITIONS" --replication-factor "$RF" --config min.insync.replicas=2 "$@"
}
acl() {  # principal operation topic-or-prefix
  "$BIN/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" --add --allow-principal "User:$1" --operation "$2" --topic "$PREFIX$3"
}

for t in applications saga-events audit-heads ops ops-replies dlq; do topic "$t"; done
topic saga-state --config cleanup.policy=compact
topic licences --config cleanup.policy=compact
for a in "${AGENCIES[@]}"; do
  for t in "commands.$a" "dept.$a.requests" "dept.$a.replies" "events.$a"; do topic "$t"; done
done

# Who may write what (reads are granted to the consumers of each topic).
acl frontdesk Write applications
for t in saga-state saga-events audit-heads licences ops-replies dlq; do acl orchestrator Write "$t"; done
for a in "${AGENCIES[@]}"; do
  acl orchestrator Write "commands.$a"
  acl orchestrator Read "events.$a"
  acl "adapter-$a" Read "commands.$a"
  acl "adapter-$a" Write "dept.$a.requests"
  acl "adapter-$a" Read "dept.$a.replies"
  acl "adapter-$a" Write "events.$a"
  acl "adapter-$a" Write dlq
  acl "dept-$a" Read "dept.$a.requests"
  acl "dept-$a" Write "dept.$a.replies"
done
for t in applications ops saga-state licences; do acl orchestrator Read "$t"; done
# The orchestrator's consumer groups (main, restore, licences) and transactional ids share its group name.
"$BIN/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" --add --allow-principal User:orchestrator --operation All \
  --group "${PREFIX}orchestrator" --resource-pattern-type prefixed
"$BIN/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" --add --allow-principal User:orchestrator --operation Write \
  --operation Describe --transactional-id "${PREFIX}orchestrator" --resource-pattern-type prefixed
acl operator Write ops
for t in ops-replies saga-events saga-state audit-heads dlq; do acl operator Read "$t"; done
echo "provisioned topics and ACLs with prefix '$PREFIX' ($PARTITIONS partitions, replication $RF)"
