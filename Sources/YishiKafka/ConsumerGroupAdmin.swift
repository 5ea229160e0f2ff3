import CRdKafka
import Foundation

/// One member of a consumer group, as the group coordinator describes it (DescribeGroups).
public struct ConsumerGroupMember: Sendable, Equatable, Encodable {
    /// The member id the coordinator assigned (`consumer_id`).
    public var memberId: String
    /// The member's `client.id`.
    public var clientId: String
    /// The member's host as the broker saw it (`/10.0.0.5`).
    public var host: String
    /// The static membership id (`group.instance.id`), nil without one.
    public var instanceId: String?
    /// Partitions assigned to the member, `topic[partition]`, sorted.
    public var assignment: [String]

    /// The client id, or (when the broker leaves it empty, as Tansu 0.6.0 does) the member id
    /// without librdkafka's `-<uuid>` suffix, which starts with the client id.
    public var label: String {
        if !clientId.isEmpty { return clientId }
        let parts = memberId.split(separator: "-")
        return parts.count > 5 ? parts.dropLast(5).joined(separator: "-") : memberId
    }
}

/// A consumer group as the cluster's coordinator describes it.
public struct ConsumerGroupDescription: Sendable, Equatable, Encodable {
    public var groupId: String
    /// librdkafka's state name: `Stable`, `Empty`, `PreparingRebalance`, `CompletingRebalance`,
    /// `Dead` (the coordinator knows no such group) or `Unknown`.
    public var state: String
    public var members: [ConsumerGroupMember]
    /// The coordinator's error for this group, nil when described.
    public var error: String?
}

extension KafkaAdmin {
    /// The consumer groups the cluster knows (Kafka's ListGroups, via librdkafka's
    /// `rd_kafka_ListConsumerGroups`), by group id with their state name.
    ///
    /// - Throws: `KafkaError` when the request fails as a whole or times out. Per-broker errors
    ///   (`rd_kafka_ListConsumerGroups_result_errors`) are thrown when no group was listed.
    public func listConsumerGroups(timeout: Duration = .seconds(10)) throws(KafkaError) -> [String: String] {
        try withAdminResult(timeout: timeout, operation: "listConsumerGroups") { (rk, options, queue) in
            rd_kafka_ListConsumerGroups(rk, options, queue)
        } read: { event throws(KafkaError) in
            let result = rd_kafka_event_ListConsumerGroups_result(event)
            var count = 0
            let valid = rd_kafka_ListConsumerGroups_result_valid(result, &count)
            var groups: [String: String] = [:]
            for i in 0..<count {
                guard let listing = valid?[i] else { continue }
                groups[String(cString: rd_kafka_ConsumerGroupListing_group_id(listing))] =
                    String(cString: rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupListing_state(listing)))
            }
            var errorCount = 0
            let errors = rd_kafka_ListConsumerGroups_result_errors(result, &errorCount)
            if groups.isEmpty, errorCount > 0, let first = errors?[0] {
                throw KafkaError(code: rd_kafka_error_code(first), operation: "listConsumerGroups",
                                 message: rd_kafka_error_string(first).map { String(cString: $0) })
            }
            return groups
        }
    }

    /// The state and live members of each group in `groups` (Kafka's DescribeGroups, via
    /// librdkafka's `rd_kafka_DescribeConsumerGroups`), in the order asked. A group the
    /// coordinator does not know is described with state `Dead` and no member.
    ///
    /// - Throws: `KafkaError` when the request fails as a whole or times out; a per-group
    ///   error is returned in that group's `error`.
    public func describeConsumerGroups(_ groups: [String], timeout: Duration = .seconds(10)) throws(KafkaError) -> [ConsumerGroupDescription] {
        guard !groups.isEmpty else { return [] }
        let names = groups.map { strdup($0) }
        defer { for n in names { free(n) } }
        var pointers: [UnsafePointer<CChar>?] = names.map { UnsafePointer($0) }
        let described = try withAdminResult(timeout: timeout, operation: "describeConsumerGroups") { (rk, options, queue) in
            rd_kafka_DescribeConsumerGroups(rk, &pointers, pointers.count, options, queue)
        } read: { event -> [String: ConsumerGroupDescription] in
            var count = 0
            let results = rd_kafka_DescribeConsumerGroups_result_groups(rd_kafka_event_DescribeConsumerGroups_result(event), &count)
            var out: [String: ConsumerGroupDescription] = [:]
            for i in 0..<count {
                guard let g = results?[i] else { continue }
                let id = String(cString: rd_kafka_ConsumerGroupDescription_group_id(g))
                var error: String?
                if let e = rd_kafka_ConsumerGroupDescription_error(g), rd_kafka_error_code(e) != RD_KAFKA_RESP_ERR_NO_ERROR {
                    error = rd_kafka_error_string(e).map { String(cString: $0) } ?? "error \(rd_kafka_error_code(e).rawValue)"
                }
                var members: [ConsumerGroupMember] = []
                for m in 0..<rd_kafka_ConsumerGroupDescription_member_count(g) {
                    guard let member = rd_kafka_ConsumerGroupDescription_member(g, m) else { continue }
                    var assigned: [String] = []
                    if let assignment = rd_kafka_MemberDescription_assignment(member),
                       let list = rd_kafka_MemberAssignment_partitions(assignment) {
                        for p in 0..<Int(list.pointee.cnt) {
                            let tp = list.pointee.elems[p]
                            assigned.append("\(String(cString: tp.topic))[\(tp.partition)]")
                        }
                    }
                    members.append(ConsumerGroupMember(
                        memberId: rd_kafka_MemberDescription_consumer_id(member).map { String(cString: $0) } ?? "",
                        clientId: rd_kafka_MemberDescription_client_id(member).map { String(cString: $0) } ?? "",
                        host: rd_kafka_MemberDescription_host(member).map { String(cString: $0) } ?? "",
                        instanceId: rd_kafka_MemberDescription_group_instance_id(member).map { String(cString: $0) },
                        assignment: assigned.sorted()))
                }
                out[id] = ConsumerGroupDescription(
                    groupId: id, state: String(cString: rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(g))),
                    members: members.sorted { $0.memberId < $1.memberId }, error: error)
            }
            return out
        }
        return groups.map { described[$0] ?? ConsumerGroupDescription(groupId: $0, state: "Dead", members: [], error: "not in the broker's answer") }
    }
}
