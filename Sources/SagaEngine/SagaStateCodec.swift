import Foundation

/// The one place `SagaState` becomes the value of a `saga-state` record and back.
///
/// Every reader and writer of `saga-state` (the orchestrator's changelog writes and restore, the
/// CLI's changelog reader, `yishi audit verify`) goes through `encode`/`decode`, so the record
/// format can change in one place. `decode` accepts every format the hub has written.
///
/// Today's format is the state's JSON text (JSONEncoder's default output).
public enum SagaStateCodec {
    /// Why a `saga-state` value could not be decoded (corrupt, or written by a newer version).
    public struct DecodeError: Error, CustomStringConvertible {
        public var reason: String
        public init(_ reason: String) { self.reason = reason }
        public var description: String { reason }
    }

    /// The record value for `state`.
    public static func encode(_ state: SagaState) -> Data {
        (try? JSONEncoder().encode(state)) ?? Data()
    }

    /// The state in a record value written by any version of the hub.
    /// - Throws: `DecodeError` naming what is wrong with the bytes.
    public static func decode(_ data: Data) throws -> SagaState {
        do { return try JSONDecoder().decode(SagaState.self, from: data) } catch {
            throw DecodeError("not a SagaState: \(error)")
        }
    }
}
