import Foundation
import Testing
@testable import SagaEngine

@Suite struct ValidatorTests {
    let validator = library.validator

    /// A small valid bundle (a → b → c); each test breaks one thing in it.
    static func mini(_ steps: String, extra: String = "") -> String {
        """
        {"id":"mini","version":1,"title":"mini","sla":{"workingDays":1,"calendar":"cn-mainland","atRiskRemaining":"2h"},
         "defaults":{"timeout":"1h","onFailure":"manual"}\(extra),
         "steps":[\(steps)]}
        """
    }
    static let a = #"{"id":"a","agency":"business-registration","action":"reserve-name","input":{"proposedName":"$.form.company.proposedName","tradeName":"x","industryWord":"x","organizationForm":"x","region":"$.form.region","industryCode":"x"}"#
    static func release(_ id: String, after: String, ref: String = "$.steps.a.outputs.reservationId", more: String = "") -> String {
        #"{"id":"\#(id)","agency":"business-registration","action":"release-name","after":[\#(after)],"input":{"reservationId":"\#(ref)"}\#(more)}"#
    }
    static let valid = mini([a + "}", release("b", after: #""a""#), release("c", after: #""b""#)].joined(separator: ","))

    func problems(_ text: String, file: String) -> [String] {
        let (def, ps) = validator.validate(data: Data(text.utf8), file: file)
        #expect(def == nil)
        return ps.map(\.description)
    }

    @Test func theBaseFixtureIsValid() {
        let (def, ps) = validator.validate(data: Data(Self.valid.utf8), file: "mini.json")
        #expect(ps.isEmpty)
        #expect(def?.steps.map(\.after) == [[], ["a"], ["b"]])
        #expect(def?.steps[0].timeout == "1h")  // folded in from defaults
    }

    @Test func everyShippedBundleIsValid() throws {
        let files = try BundleLibrary.jsonFiles(in: repoRoot.appendingPathComponent("seeds/bundles"))
        #expect(files.count >= 5)
        // Each file on its own (an `extends` base comes from the directory, as `bundles validate FILE` does it).
        for f in files {
            let lib = BundleLibrary.load(files: [f], catalogues: library.catalogues, calendars: library.calendars,
                                         eventSchemas: library.eventSchemas, bases: files)
            #expect(lib.problems.isEmpty, "\(lib.problems)")
            #expect(lib.bundles.count == 1)
        }
        #expect(library.problems.isEmpty)
        #expect(Set(library.bundles.map(\.id)) == ["enterprise-opening", "restaurant-opening", "convenience-store-opening", "barbershop-opening",
                                                   "milk-tea-shop-opening", "enterprise-deregistration", "enterprise-deregistration-simple",
                                                   "startup-subsidy"])
    }

    @Test func enterpriseOpeningHasTheDesignedDAG() {
        let b = bundle("enterprise-opening")
        let names = b.levels.map { Set($0.map { b.steps[$0].id }) }
        #expect(names == [["name-reservation"], ["registration"], ["seals", "tax-registration", "social-security"], ["bank-account", "invoices-ukey"]])
        let inv = b.steps[b.stepIndex(of: "invoices-ukey")!]
        #expect(Set(inv.predecessors.map { b.steps[$0].id }) == ["tax-registration", "seals"])
    }

    @Test func cycleIsReportedWithTheCycle() {
        let text = Self.mini([Self.a + #","after":["c"]}"#, Self.release("b", after: #""a""#), Self.release("c", after: #""b""#)].joined(separator: ","))
        let ps = problems(text, file: "fixtures/cycle.json")
        #expect(ps.contains("fixtures/cycle.json: $.steps[1].after[0]: cycle: a → b → c → a"), "\(ps)")
    }

    @Test func selfLoopIsACycle() {
        let ps = problems(Self.mini(Self.a + #","after":["a"]}"#), file: "self.json")
        #expect(ps.contains("self.json: $.steps[0].after[0]: cycle: a → a"), "\(ps)")
    }

    @Test func unknownPredecessor() {
        let ps = problems(Self.mini([Self.a + "}", Self.release("b", after: #""a","zz""#)].joined(separator: ",")), file: "fixtures/pred.json")
        #expect(ps == ["fixtures/pred.json: $.steps[1].after[1]: unknown predecessor 'zz'"])
    }

    @Test func unknownAgency() {
        let text = Self.valid.replacingOccurrences(of: #""id":"a","agency":"business-registration""#, with: #""id":"a","agency":"police""#)
        let ps = problems(text, file: "agency.json")
        #expect(ps.count == 1)
        #expect(ps[0].hasPrefix("agency.json: $.steps[0].agency: unknown agency 'police' (known: bank, business-registration,"))
    }

    @Test func unknownAction() {
        let text = Self.valid.replacingOccurrences(of: #""action":"reserve-name""#, with: #""action":"reserve-names""#)
        let ps = problems(text, file: "action.json")
        #expect(ps.count == 1)
        #expect(ps[0].hasPrefix("action.json: $.steps[0].action: agency 'business-registration' has no action 'reserve-names'"))
    }

    @Test func mappingToAnOutputThePredecessorDoesNotProduce() {
        let text = Self.mini([Self.a + "}", Self.release("b", after: #""a""#, ref: "$.steps.a.outputs.uscc")].joined(separator: ","))
        let ps = problems(text, file: "output.json")
        #expect(ps.count == 1)
        #expect(ps[0].hasPrefix("output.json: $.steps[1].input.reservationId: '$.steps.a.outputs.uscc': action 'reserve-name' of step 'a' produces no output 'uscc'"))
    }

    @Test func mappingToAStepThatIsNotAPredecessor() {
        let text = Self.mini([Self.a + "}", Self.release("b", after: #""a""#, ref: "$.steps.c.outputs.reservationId"), Self.release("c", after: #""a""#)].joined(separator: ","))
        let ps = problems(text, file: "order.json")
        #expect(ps == ["order.json: $.steps[1].input.reservationId: '$.steps.c.outputs.reservationId': step 'c' is not a predecessor of 'b' (add it to 'after', directly or transitively)"])
    }

    @Test func mappingToUnknownStepFormFieldOrLicence() {
        let text = Self.mini([Self.a.replacingOccurrences(of: "$.form.region", with: "$.form.regoin") + "}",
                              Self.release("b", after: #""a""#, ref: "$.licences.passport.number"),
                              Self.release("c", after: #""a""#, ref: "$.steps.zz.outputs.x")].joined(separator: ","))
        let ps = problems(text, file: "refs.json")
        #expect(ps.contains { $0.hasPrefix("refs.json: $.steps[0].input.region: '$.form.regoin': the application form has no field 'regoin' (it has: applicationId, bank,") }, "\(ps)")
        #expect(ps.contains { $0.hasPrefix("refs.json: $.steps[1].input.reservationId: no action issues licence type 'passport'") })
        #expect(ps.contains("refs.json: $.steps[2].input.reservationId: '$.steps.zz.outputs.x' references unknown step 'zz'"))
    }

    @Test func badDurations() {
        let text = Self.mini(Self.a + #","timeout":"15 minutes","retry":{"attempts":3,"backoffBase":"1x","backoffCap":"0s","jitter":0.1,"retryableCodes":[]}}"#)
        let ps = problems(text, file: "dur.json")
        #expect(ps.contains { $0.hasPrefix("dur.json: $.steps[0].timeout: bad duration '15 minutes'") })
        #expect(ps.contains { $0.hasPrefix("dur.json: $.steps[0].retry.backoffBase: bad duration '1x'") })
        #expect(ps.contains { $0.hasPrefix("dur.json: $.steps[0].retry.backoffCap: bad duration '0s'") })
        let cap = problems(Self.mini(Self.a + #","retry":{"attempts":3,"backoffBase":"5m","backoffCap":"1m","jitter":0.1,"retryableCodes":[]}}"#), file: "cap.json")
        #expect(cap == ["cap.json: $.steps[0].retry.backoffCap: backoffCap '1m' is shorter than backoffBase '5m'"])
        let sla = problems(Self.valid.replacingOccurrences(of: #""atRiskRemaining":"2h""#, with: #""atRiskRemaining":"8h""#), file: "sla.json")
        #expect(sla.count == 1 && sla[0].hasPrefix("sla.json: $.sla.atRiskRemaining: '8h' is not shorter than the SLA"))
    }

    @Test func duplicateStepId() {
        let text = Self.mini([Self.a + "}", Self.release("b", after: #""a""#), Self.release("b", after: #""a""#)].joined(separator: ","))
        let ps = problems(text, file: "dup.json")
        #expect(ps == ["dup.json: $.steps[2].id: duplicate step id 'b' (first defined at $.steps[1])"])
    }

    @Test func unknownErrorCodeMissingInputUnknownInputAndUnknownKey() {
        let text = Self.mini([Self.a + #","retry":{"attempts":2,"backoffBase":"1s","backoffCap":"1m","jitter":0.1,"retryableCodes":["UNAVAILABLE","KYC_FAILED"]}}"#,
                              #"{"id":"b","agency":"business-registration","action":"release-name","after":["a"],"input":{"reservationID":"$.steps.a.outputs.reservationId"},"timout":"1h"}"#].joined(separator: ","))
        let ps = problems(text, file: "misc.json")
        #expect(ps.contains("misc.json: $.steps[0].retry.retryableCodes[1]: agency 'business-registration' has no error code 'KYC_FAILED'"))
        #expect(ps.contains("misc.json: $.steps[1].input: action 'release-name' requires input 'reservationId'"))
        #expect(ps.contains { $0.hasPrefix("misc.json: $.steps[1].input.reservationID: action 'release-name' takes no input 'reservationID'") })
        #expect(ps.contains { $0.hasPrefix("misc.json: $.steps[1].timout: unknown key 'timout'") })
    }

    @Test("容缺: a deferrable material the step's action can never ask for is a problem at its path")
    func deferrableMaterialsMustBeAskable() throws {
        // The restaurant bundle as shipped before issue 10: the food-permit department asks for
        // lease-contract and premises-layout, never for a floor plan or health certificates.
        // (Written in full: its definition as composed over enterprise-opening v1.)
        let shipped = try JSONEncoder().encode(try #require(library.bundle("restaurant-opening", version: 1)).definition)
        guard case .object(var bundle) = try JSONValue.parse(shipped), case .array(var steps)? = bundle["steps"],
              let i = steps.firstIndex(where: { $0["id"]?.stringValue == "food-business-permit" }), case .object(var permit) = steps[i] else {
            Issue.record("no food-business-permit step"); return
        }
        permit["deferrableMaterials"] = .array(["floor-plan", "premises-layout", "health-certificates"])
        steps[i] = .object(permit)
        bundle["steps"] = .array(steps)
        bundle["extends"] = nil
        let ps = problems(JSONValue.object(bundle).text(), file: "restaurant-opening.v1.json")
        #expect(ps == [
            "restaurant-opening.v1.json: $.steps[\(i)].deferrableMaterials[0]: action 'issue-food-business-permit' of agency 'business-registration' never asks for 'floor-plan' as 容缺 (it may ask for: lease-contract, premises-layout)",
            "restaurant-opening.v1.json: $.steps[\(i)].deferrableMaterials[2]: action 'issue-food-business-permit' of agency 'business-registration' never asks for 'health-certificates' as 容缺 (it may ask for: lease-contract, premises-layout)",
        ], "\(ps)")
        // An action that asks for nothing cannot defer anything.
        let text = Self.mini([Self.a + #","deferrableMaterials":["lease-contract"]}"#].joined(separator: ","))
        #expect(problems(text, file: "mini.json") == ["mini.json: $.steps[0].deferrableMaterials[0]: action 'reserve-name' of agency 'business-registration' never asks for 'lease-contract' as 容缺 (it asks for no supplement)"])
    }

    @Test func everyProblemIsReportedNotJustTheFirst() {
        let text = Self.mini([Self.a.replacingOccurrences(of: "business-registration", with: "police") + #","timeout":"soon","after":["b"]}"#,
                              Self.release("b", after: #""a""#), Self.release("b", after: #""q""#)].joined(separator: ","))
        let kinds = Set(validator.validate(data: Data(text.utf8), file: "many.json").1.map(\.kind))
        // The duplicate b (after q) also maps an output of a, which is not its predecessor.
        #expect(kinds == [.unknownAgency, .badDuration, .cycle, .duplicateStepId, .unknownPredecessor, .notAPredecessor])
    }

    @Test func structuralErrors() {
        #expect(problems("{", file: "broken.json").first?.hasPrefix("broken.json: $: not valid JSON") == true)
        let ps = problems(#"{"id":"Bad Id","version":0,"sla":{"workingDays":1,"calendar":"mars","atRiskRemaining":"1h"},"steps":[]}"#, file: "s.json")
        #expect(ps.contains("s.json: $: missing required field 'title'"))
        #expect(ps.contains { $0.hasPrefix("s.json: $.id: 'Bad Id' is not a valid id") })
        #expect(ps.contains("s.json: $.version: must be a whole number ≥ 1"))
        #expect(ps.contains { $0.hasPrefix("s.json: $.sla.calendar: unknown calendar 'mars'") })
        #expect(ps.contains("s.json: $.steps: 'steps' must be a non-empty array"))
    }

    @Test func sameIdAndVersionTwiceIsAProblem() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("yishi-validator-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let f1 = dir.appendingPathComponent("one.json"), f2 = dir.appendingPathComponent("two.json")
        try Data(Self.valid.utf8).write(to: f1)
        try Data(Self.valid.utf8).write(to: f2)
        let lib = BundleLibrary.load(files: [f1, f2], catalogues: library.catalogues, calendars: library.calendars)
        #expect(lib.bundles.count == 1)
        #expect(lib.problems.map(\.path) == ["$.version"])
        #expect(lib.problems.first?.file == f2.path)
    }
}
