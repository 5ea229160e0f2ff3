import Foundation
import SagaEngine

/// Which names an operator may give with `retry --set NAME=…` (the step's payload fields: the
/// bundle's mapping for the step and the agency catalogue's inputs for its action) and with
/// `resolve --output NAME=…` (the catalogue's outputs for the action). The orchestrator checks
/// every request against it (the authority); the CLI checks first and `diagnose` lists the names.
public enum OperatorInputCheck {
    /// Payload fields of `step` in `bundle`, sorted; nil when the step is unknown.
    public static func payloadFields(step: String, bundle: CompiledBundle, catalogues: CatalogueSet) -> [String]? {
        guard let i = bundle.stepIndex(of: step) else { return nil }
        let s = bundle.steps[i]
        let inputs = catalogues.agencies[s.agency]?.action(s.action)?.inputs.map(\.name) ?? []
        return Array(Set(s.payloadFields).union(inputs)).sorted()
    }

    /// Outputs of `step`'s action in the agency catalogue, sorted; nil when the step is unknown.
    public static func outputs(step: String, bundle: CompiledBundle, catalogues: CatalogueSet) -> [String]? {
        guard let i = bundle.stepIndex(of: step) else { return nil }
        let s = bundle.steps[i]
        return (catalogues.agencies[s.agency]?.action(s.action)?.outputs.map(\.name) ?? []).sorted()
    }

    /// Nil when every name in `data` is valid for `action` (`retry` or `resolve`) on `step`;
    /// else the refusal, naming the wrong names and listing the valid ones.
    public static func refusal(action: OpsRequest.Action, step: String?, data: [String: JSONValue]?, bundle: CompiledBundle,
                               catalogues: CatalogueSet) -> String? {
        guard let step, let data, !data.isEmpty else { return nil }
        let (option, valid): (String, [String]?)
        switch action {
        case .retry: (option, valid) = ("--set", payloadFields(step: step, bundle: bundle, catalogues: catalogues))
        case .resolve: (option, valid) = ("--output", outputs(step: step, bundle: bundle, catalogues: catalogues))
        default: return nil
        }
        guard let valid else { return "\(bundle.id) v\(bundle.version) has no step '\(step)'; its steps: \(bundle.steps.map(\.id).joined(separator: ", "))" }
        // A retry of a failed compensation takes no corrected input: the engine decides; only forward names are checked here.
        let unknown = data.keys.filter { !valid.contains($0) }.sorted()
        guard !unknown.isEmpty else { return nil }
        let what = action == .retry ? "payload field" : "output"
        return "\(option) \(unknown.joined(separator: ", ")): not \(unknown.count == 1 ? "a" : "") \(what)\(unknown.count == 1 ? "" : "s") of step \(step); "
            + "valid: \(valid.isEmpty ? "none" : valid.joined(separator: ", "))"
    }
}
