import Foundation

/// The per-saga hash chain of the audit trail (全程留痕): every record the orchestrator writes
/// to `saga-events` for a saga carries `link = H(prev ‖ canonical)`, where `prev` is the link of
/// the saga's previous record (the genesis value for its first) and `canonical` the record's
/// canonical bytes. Changing, removing, inserting or reordering a record breaks the chain at that
/// record; the saga's state (and the `audit-heads` topic) keep the last link and the length, so
/// removing a saga's *last* records is detectable too.
///
/// H is SM3 (GB/T 32905-2016) unless configured to SHA-256 (FIPS 180-4); a saga keeps the
/// algorithm its chain started with.
public enum AuditChain {
    /// Record header names (values are UTF-8 text).
    public enum Header {
        /// `sm3` or `sha-256`.
        public static let algorithm = "yishi-chain-alg"
        /// This record's link, 64 lowercase hex digits.
        public static let link = "yishi-chain"
        /// The previous record's link (the genesis value for the first), 64 lowercase hex digits.
        public static let previous = "yishi-chain-prev"
        /// This record's position in the chain, 1-based decimal.
        public static let position = "yishi-chain-seq"
    }

    /// The chain's start for a saga: `H("yishi-chain-genesis\n" ‖ sagaId ‖ "\n" ‖ bundleVersion)`
    /// (UTF-8, the version in decimal), 32 bytes.
    public static func genesis(sagaId: String, bundleVersion: Int, algorithm: HashAlgorithm) -> [UInt8] {
        algorithm.digest(Array("yishi-chain-genesis\n\(sagaId)\n\(bundleVersion)".utf8))
    }

    /// The canonical bytes of one record: its CloudEvents type, its key (the saga id) and its
    /// value (the payload's canonical JSON text, exactly as written), each UTF-8, joined by a
    /// 0x00 byte: `type 0x00 key 0x00 value`. So a record moved to another saga or retyped
    /// breaks the chain as much as a changed payload.
    public static func canonical(type: String, key: String, value: some Collection<UInt8>) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(type.utf8.count + key.utf8.count + value.count + 2)
        bytes += type.utf8
        bytes.append(0)
        bytes += key.utf8
        bytes.append(0)
        bytes += value
        return bytes
    }

    /// `H(previous ‖ canonical)`, 32 bytes.
    public static func link(previous: [UInt8], canonical: [UInt8], algorithm: HashAlgorithm) -> [UInt8] {
        algorithm.digest(previous + canonical)
    }
}

/// The last link of a saga's audit chain, kept in its state so the chain continues across
/// restarts, restores and orchestrator instances, and so that removed trailing records show.
public struct AuditChainHead: Codable, Equatable, Sendable {
    /// The hash function of the chain (`sm3`, `sha-256`).
    public var algorithm: HashAlgorithm
    /// Records chained so far.
    public var length: UInt32
    /// The link of the last chained record (the genesis value while `length` is 0), 64 hex digits.
    public var link: String

    public init(algorithm: HashAlgorithm, length: UInt32, link: String) {
        self.algorithm = algorithm
        self.length = length
        self.link = link
    }

    /// A chain with no records yet for a saga.
    public static func start(sagaId: String, bundleVersion: Int, algorithm: HashAlgorithm) -> AuditChainHead {
        AuditChainHead(algorithm: algorithm, length: 0,
                       link: Hex.encode(AuditChain.genesis(sagaId: sagaId, bundleVersion: bundleVersion, algorithm: algorithm)))
    }

    /// Chains one more record; returns the previous link and the new one (hex).
    public mutating func append(type: String, key: String, value: some Collection<UInt8>) -> (previous: String, link: String) {
        let previous = link
        let bytes = AuditChain.link(previous: Hex.decode(previous) ?? [], canonical: AuditChain.canonical(type: type, key: key, value: value),
                                    algorithm: algorithm)
        link = Hex.encode(bytes)
        length &+= 1
        return (previous, link)
    }
}
