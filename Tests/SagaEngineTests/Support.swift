import Foundation
import Testing
@testable import SagaEngine

/// The repository root, found from this file's path so tests run from any working directory.
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Shipped catalogues, calendars and bundles, loaded once.
let library: BundleLibrary = {
    try! BundleLibrary.load(
        bundles: repoRoot.appendingPathComponent("seeds/bundles"),
        catalogues: repoRoot.appendingPathComponent("adapters"),
        calendars: repoRoot.appendingPathComponent("seeds/calendar"),
        schemas: repoRoot.appendingPathComponent("schemas"))
}()
let calendar = library.calendars["cn-mainland"]!

/// Version 1 of a bundle: the scenarios are written against its DAG (enterprise-opening v2 adds the housing fund).
func bundle(_ id: String, version: Int = 1) -> CompiledBundle { library.bundle(id, version: version)! }

func at(_ rfc3339: String) -> Instant { Instant(rfc3339: rfc3339)! }

/// The sample application form of docs/application-form.md.
let sampleForm: JSONValue = try! JSONValue.parse("""
    {"applicationId":"APP-20260302-000001","bundle":"enterprise-opening","submittedAt":"2026-03-02T09:15:00+08:00","region":"330106",
     "company":{"proposedName":"杭州云栖茶饮有限公司","tradeName":"云栖","industryWord":"茶饮","organizationForm":"有限公司","industryCode":"F5123",
       "entityType":"limited-liability","registeredCapital":500000,"address":"浙江省杭州市西湖区文三路 100 号 2 层","businessScope":"茶饮料及其他饮料制作销售；食品销售"},
     "legalRepresentative":{"name":"张伟","idNumber":"11010519491231002X","phone":"13800138000"},
     "shareholders":[{"name":"张伟","idNumber":"11010519491231002X","contribution":500000}],
     "employees":{"expectedCount":5},"seals":["company","finance","invoice","legal-representative"],
     "tax":{"taxpayerType":"small-scale","invoiceTypes":["vat-general-electronic"]},
     "bank":{"bankCode":"ICBC","branchName":"中国工商银行杭州文三路支行"},"permits":[],
     "materials":[{"type":"articles-of-association","provided":true},{"type":"lease-contract","provided":false}],
     "contact":{"name":"张伟","phone":"13800138000"}}
    """)

/// Plausible outputs for a step: every output its catalogue action declares.
func outputs(for step: CompiledBundle.CompiledStep, tag: String = "") -> [String: JSONValue] {
    let action = library.catalogues.agencies[step.agency]!.action(step.action)!
    return Dictionary(uniqueKeysWithValues: action.outputs.map { ($0.name, JSONValue.string("\(step.id).\($0.name)\(tag)")) })
}

/// SplitMix64: a tiny seeded PRNG so every random interleaving can be reproduced from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
    mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(UInt64(1) << 53) < p }
}

/// Drives one saga and keeps its input log and every output.
struct Harness {
    let bundle: CompiledBundle
    var state: SagaState
    var log: [SagaInput] = []
    var outputs: [SagaOutput] = []
    var now: Instant

    init(_ bundleId: String = "enterprise-opening", sagaId: String = "saga-APP-1", start: Instant = at("2026-03-02T09:15:00+08:00")) {
        bundle = SagaEngineTests.bundle(bundleId)
        state = SagaState(sagaId: sagaId, bundle: bundle)
        now = start
    }

    @discardableResult
    mutating func apply(_ event: SagaEvent, at t: Instant? = nil) -> [SagaOutput] {
        let input = SagaInput(at: t ?? now, event)
        let out = SagaEngine.apply(to: &state, input, bundle: bundle, calendar: calendar)
        log.append(input)
        outputs += out
        return out
    }

    mutating func submit(licences: [String: JSONValue] = [:]) -> [SagaOutput] { apply(.submit(form: sampleForm, licences: licences)) }

    mutating func succeed(_ step: String, attempt: Int = 1, outputs extra: [String: JSONValue]? = nil) -> [SagaOutput] {
        let st = bundle.steps[bundle.stepIndex(of: step)!]
        return apply(.stepSucceeded(step: step, attempt: attempt, outputs: extra ?? SagaEngineTests.outputs(for: st)))
    }

    func status(_ step: String) -> StepStatus { state.steps[bundle.stepIndex(of: step)!].status }
}

extension Array where Element == SagaOutput {
    var dispatched: [StepCommand] { compactMap { if case .dispatch(let c) = $0 { return c }; return nil } }
    var compensations: [StepCommand] { compactMap { if case .compensate(let c) = $0 { return c }; return nil } }
    var scheduled: [TimerCommand] { compactMap { if case .scheduleTimer(let t) = $0 { return t }; return nil } }
    var cancelled: [TimerCommand] { compactMap { if case .cancelTimer(let t) = $0 { return t }; return nil } }
    var audits: [AuditEvent] { compactMap { if case .audit(let a) = $0 { return a }; return nil } }
    var isIgnored: Bool { count == 1 && audits.first?.kind == .inputIgnored }
}
