import Foundation
import SagaEngine

/// Whether the loaded bundle definitions still fit the sagas restored from `saga-state`.
///
/// A saga's state is matched to its bundle version's steps by position, so running it on a
/// version that was removed, or edited in place (same id and version, different content), would
/// ignore answers as stale, fire the wrong timers and read outputs from the wrong step. The
/// orchestrator therefore refuses to process partitions holding such sagas (see
/// `OrchestratorService`): at start and after every rebalance it exits with these problems.
/// Only unfinished sagas count: a finished saga needs no definition to run.
public enum DefinitionCheck {
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        public enum Kind: Sendable, Equatable {
            /// No loaded file defines this id and version.
            case missing
            /// The loaded definition's fingerprint differs from the one the sagas started on.
            case changed(file: String, loaded: String, started: String)
        }
        public var bundleId: String
        public var version: Int
        public var kind: Kind
        /// Unfinished sagas that need this version.
        public var sagas: Int
        /// A few of their ids, for the operator to look at.
        public var examples: [String]
        /// The bundle directory searched.
        public var directory: String

        public var description: String {
            let who = "\(sagas) running saga(s) (e.g. \(examples.joined(separator: ", ")))"
            switch kind {
            case .missing:
                return "bundle \(bundleId) v\(version) is needed by \(who), but no file in \(directory) defines it: "
                    + "put back the file that defined it (\(bundleId).v\(version).json; a version may be removed only when no saga runs on it)"
            case .changed(let file, let loaded, let started):
                return "bundle \(bundleId) v\(version) in \(file) is not the definition \(who) started on "
                    + "(fingerprint \(loaded.prefix(12)) now, \(started.prefix(12)) in the sagas): it was edited in place; "
                    + "restore the file as it was and publish the change as version \(version + 1)"
            }
        }
    }

    /// Problems for `states` against `library`, one per bundle version, sorted by id and version.
    /// States without a fingerprint (written before it existed) are checked only for presence.
    public static func problems(_ states: [SagaState], library: BundleLibrary, directory: String) -> [Problem] {
        var byVersion: [String: (id: String, version: Int, kind: Problem.Kind, ids: [String])] = [:]
        // The last bundle version and fingerprint found fine: a restore's states mostly share a few
        // versions, so most states are checked by two string comparisons instead of a library lookup.
        var lastFine: (id: String, version: Int, fingerprint: String?)?
        for state in states where !state.status.isFinal {
            if let fine = lastFine, fine.version == state.bundleVersion, fine.id == state.bundleId,
               fine.fingerprint == state.definitionFingerprint { continue }
            let kind: Problem.Kind
            if let bundle = library.bundle(state.bundleId, version: state.bundleVersion) {
                guard let started = state.definitionFingerprint, started != bundle.fingerprint else {
                    lastFine = (state.bundleId, state.bundleVersion, state.definitionFingerprint)
                    continue
                }
                kind = .changed(file: bundle.file ?? directory, loaded: bundle.fingerprint, started: started)
            } else {
                kind = .missing
            }
            let key = "\(state.bundleId)\u{0}\(state.bundleVersion)"
            byVersion[key, default: (state.bundleId, state.bundleVersion, kind, [])].ids.append(state.sagaId)
        }
        return byVersion.values.sorted { ($0.id, $0.version) < ($1.id, $1.version) }.map {
            Problem(bundleId: $0.id, version: $0.version, kind: $0.kind, sagas: $0.ids.count, examples: Array($0.ids.sorted().prefix(3)),
                    directory: directory)
        }
    }
}
