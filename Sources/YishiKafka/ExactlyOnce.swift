/// Kafka's consume-transform-produce step, shared by every hub service that reads and
/// writes in one transaction (orchestrator, adapters).
extension KafkaProducer {
    /// Writes `records` and the offsets after `consumed` in one transaction. Returns false when
    /// the transaction had to be aborted (a retriable or abortable error): the consumer is then
    /// back at its committed offsets, so the same input is read and transformed again. Fatal
    /// errors (e.g. fenced by a newer instance with the same transactional id) are thrown.
    public func commitBatch(_ records: [ProducerRecord], consumed: [KafkaMessage], consumer: KafkaConsumer) throws(KafkaError) -> Bool {
        do {
            try beginTransaction()
            for record in records { try enqueue(record) }
            try sendOffsetsToTransaction(KafkaMessage.offsets(after: consumed), consumer: consumer)
            try commitTransaction()
            return true
        } catch {
            guard error.requiresAbort || error.isRetriable else { throw error }
            try? abortTransaction()
            try consumer.rewindToCommitted()
            return false
        }
    }
}

extension KafkaConsumer {
    /// Seeks every assigned partition back to its committed offset (the beginning when none).
    public func rewindToCommitted() throws(KafkaError) {
        let committed = try committed(try assignment())
        try seek(committed.map { TopicPartitionOffset($0.topic, $0.partition, $0.offset < 0 ? TopicPartitionOffset.beginning : $0.offset) })
    }
}

extension KafkaMessage {
    /// Per partition, the offset after the last of `messages`: what to commit once they are processed.
    public static func offsets(after messages: [KafkaMessage]) -> [TopicPartitionOffset] {
        var next: [TopicPartition: Int64] = [:]
        for m in messages { next[m.topicPartition] = max(next[m.topicPartition] ?? 0, m.offset + 1) }
        return next.map { TopicPartitionOffset($0.key.topic, $0.key.partition, $0.value) }
    }
}
