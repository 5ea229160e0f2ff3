import Foundation
import Messaging
import Orchestrator
import Synchronization
import YishiKafka

/// The live path: operator requests on `<prefix>ops`, answers from `<prefix>ops-replies`.
///
/// A request about one saga is keyed by its id, so the instance owning that partition answers.
/// `list` and bulk actions go to every partition (explicitly), and each owner answers for its
/// own partition; the client gathers one reply per partition. Replies are keyed by request id,
/// so they all land on one `ops-replies` partition, which the client reads from where it stood
/// just before the request was sent.
public struct OpsClient {
    public let hub: Hub
    /// The share of what is left of the command's `--timeout` this client may wait for replies
    /// (0 < share ≤ 1): below 1 when the changelog answers if the orchestrator does not.
    public let share: Double

    public init(hub: Hub, share: Double = 1) { self.hub = hub; self.share = share }

    public func newRequestId() -> String {
        "ctl-" + UUID().uuidString.prefix(13).lowercased().replacingOccurrences(of: "-", with: "")
    }

    /// One saga's request; the reply of the owner of its partition.
    public func send(_ request: OpsRequest) throws -> OpsReply {
        guard let sagaId = request.sagaId else { preconditionFailure("send needs a saga id; use broadcast") }
        let partition = try hub.partition(ofSaga: sagaId, topic: "ops")
        return try exchange(request, key: sagaId, partitions: [partition])[0]
    }

    /// A request for every partition (`list`, bulk actions): one reply per partition, by partition.
    public func broadcast(_ request: OpsRequest) throws -> [OpsReply] {
        let count = try hub.partitions("ops")
        return try exchange(request, key: request.requestId, partitions: Array(0..<count))
    }

    private func exchange(_ request: OpsRequest, key: String, partitions: [Int32]) throws -> [OpsReply] {
        let repliesTopic = hub.topic("ops-replies")
        let replyPartition = try hub.partition(ofSaga: request.requestId, topic: "ops-replies")
        let consumer = try KafkaConsumer(config: hub.kafka(), groupId: "yishi-ctl-replies")
        defer { try? consumer.close() }
        // Start where the partition stands now; a low watermark (Tansu) only means reading a few more.
        let start: Int64
        do { start = try consumer.watermarks(TopicPartition(repliesTopic, replyPartition), timeout: hub.remaining).high } catch {
            throw OperationsError.unreachable("the broker at \(hub.bootstrap) did not answer for \(repliesTopic)[\(replyPartition)]: \(error)")
        }
        try consumer.assign([TopicPartitionOffset(repliesTopic, replyPartition, start)])

        let producer = try KafkaProducer(config: hub.kafka())
        let limit = RecordSizeLimit(config: hub.kafka())
        let envelope = Envelope(source: hub.source, type: MessageType.opsRequest, time: Date(), subject: request.requestId,
                                sagaId: request.sagaId, step: request.step)
        let single = request.sagaId != nil
        for partition in partitions {
            var record = try envelope.record(topic: hub.topic("ops"), key: key, payload: request)
            if !single { record.partition = partition }
            do { try limit.check(record) } catch { throw OperationsError.refused("not sent: \(error) (less --set/--output data?)") }
            try producer.enqueue(record)
        }
        do { try producer.flush(timeout: hub.remaining) } catch {
            throw OperationsError.unreachable("could not send the request to \(hub.topic("ops")) within \(hub.timeout): \(error)")
        }
        guard producer.deliveryCounts.failed == 0 else {
            throw OperationsError.unreachable("the broker did not accept the request on \(hub.topic("ops"))")
        }

        var replies: [Int32: OpsReply] = [:]
        let wanted = single ? 1 : partitions.count
        let deadline = ContinuousClock.now + hub.remaining * share
        let decoder = JSONDecoder()
        while replies.count < wanted {
            guard ContinuousClock.now < deadline else {
                let missing = single ? "" : " for partitions \(partitions.filter { replies[$0] == nil })"
                throw OperationsError.unreachable("no orchestrator answered request \(request.requestId)\(missing) within \(hub.timeout) "
                    + "(is `yishi orchestrator run` up for prefix '\(hub.prefix)'?)")
            }
            for message in try consumer.poll(maxMessages: 500, timeout: .milliseconds(50)) where message.keyString == request.requestId {
                guard let value = message.value, let reply = try? decoder.decode(OpsReply.self, from: value) else {
                    throw OperationsError.badRecord("unreadable reply at \(repliesTopic)[\(message.partition)]@\(message.offset)")
                }
                replies[reply.partition] = reply
                hub.learnHubNow(reply.now)
            }
        }
        return replies.keys.sorted().map { replies[$0]! }
    }
}
