import Foundation
import Testing
@testable import SagaEngine

/// Bundle composition (`extends`) and whole-path form references.
@Suite struct CompositionTests {
    /// A directory of bundle files for one test, removed afterwards.
    final class Files {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("yishi-compose-\(getpid())-\(UUID().uuidString.prefix(8))")
        init() { try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(at: dir) }
        func write(_ name: String, _ text: String) -> URL {
            let url = dir.appendingPathComponent(name)
            try! Data(text.utf8).write(to: url)
            return url
        }
        func load(_ urls: [URL]) -> BundleLibrary {
            BundleLibrary.load(files: urls, catalogues: library.catalogues, calendars: library.calendars, eventSchemas: library.eventSchemas)
        }
    }

    static let base = ValidatorTests.valid  // mini v1: a → b → c

    @Test("the industry bundles rewritten over enterprise-opening keep the fingerprints their running sagas hold")
    func rewrittenBundlesKeepTheirFingerprints() {
        // The fingerprints of the self-contained v1 files these replaced (`yishi bundles list --json` before the rewrite).
        let before = [
            "restaurant-opening": "7fb9035b40807581af5c0be517e9e5158ddf7df1305cdb0b0a28017f5e9ded76",
            "convenience-store-opening": "8a131a9633f5f13469ed74cc5c042972c25e23df1e8a336cd86dc9045abc25ad",
            "barbershop-opening": "cbcaf808d28c043222020ff278b338db9dbd67fe97e8ddc63056e14e717c4c33",
        ]
        for (id, fingerprint) in before {
            let b = bundle(id)
            #expect(b.definition.extends == BundleDefinition.Base(bundle: "enterprise-opening", version: 1))
            #expect(b.fingerprint == fingerprint, "\(id)")
        }
    }

    @Test("奶茶店: enterprise opening plus a food business permit and acquiring-merchant onboarding, run to completion")
    func milkTeaShopRunsToCompletion() throws {
        let milkTea = bundle("milk-tea-shop-opening"), core = bundle("enterprise-opening")
        #expect(milkTea.steps.map(\.id) == core.steps.map(\.id) + ["food-business-permit", "acquiring-merchant"])
        #expect(milkTea.definition.sla.workingDays == 3 && milkTea.definition.sla.calendar == "cn-mainland")
        var h = Harness("milk-tea-shop-opening")
        var out = h.submit()
        var done: Set<String> = []
        while let command = out.dispatched.first(where: { !done.contains($0.step) }) ?? h.outputs.dispatched.first(where: { !done.contains($0.step) }) {
            done.insert(command.step)
            out = h.succeed(command.step, attempt: command.attempt)
        }
        #expect(h.state.status == .completed)
        #expect(done == Set(milkTea.steps.map(\.id)))
    }

    @Test("override by step id (input entry by entry, null removes), removeSteps, new steps appended")
    func overrideRemoveAndAdd() throws {
        let files = Files()
        let base = files.write("mini.v1.json", Self.base)
        let ext = files.write("mini.v2.json", """
            {"id":"mini","version":2,"extends":{"bundle":"mini","version":1},"sla":{"workingDays":2},
             "removeSteps":["c"],
             "steps":[{"id":"b","timeout":"3h"},\(ValidatorTests.release("d", after: #""b""#))]}
            """)
        let lib = files.load([base, ext])
        #expect(lib.problems.isEmpty, "\(lib.problems)")
        let v2 = try #require(lib.bundle("mini", version: 2))
        #expect(v2.steps.map(\.id) == ["a", "b", "d"])
        #expect(v2.definition.steps[1].timeout == "3h" && v2.definition.steps[0].timeout == "1h")
        #expect(v2.definition.sla.workingDays == 2 && v2.definition.sla.atRiskRemaining == "2h")
        #expect(v2.definition.title == "mini")

        let dropInput = files.write("mini.v3.json", """
            {"id":"mini","version":3,"extends":{"bundle":"mini","version":1},"steps":[{"id":"a","input":{"industryCode":null}}]}
            """)
        let problems = files.load([base, dropInput]).problems.map(\.description)
        // The removed entry is a required input of reserve-name: the problem sits where the author wrote the override.
        #expect(problems == ["\(dropInput.path): $.steps[0].input: action 'reserve-name' requires input 'industryCode'"], "\(problems)")
    }

    @Test("problems are placed where the author can fix them: own steps at their own path, inherited parts at $.extends")
    func problemsArePlaced() {
        let files = Files()
        let base = files.write("mini.v1.json", Self.base)
        let ext = files.write("x.v1.json", """
            {"id":"x","version":1,"extends":{"bundle":"mini","version":1},"title":"x","removeSteps":["b","zz"],
             "steps":[{"id":"e","agency":"no-such-agency","action":"reserve-name","input":{}}]}
            """)
        let problems = files.load([base, ext]).problems.map(\.description)
        #expect(problems.contains("\(ext.path): $.removeSteps[1]: the base mini v1 has no step 'zz'"), "\(problems)")
        let lib = files.load([base, files.write("y.v1.json", """
            {"id":"y","version":1,"extends":{"bundle":"mini","version":1},"title":"y","removeSteps":["b"],
             "steps":[{"id":"e","agency":"no-such-agency","action":"reserve-name","input":{}}]}
            """)])
        let ps = lib.problems.map(\.description)
        #expect(ps.contains { $0.hasSuffix("y.v1.json: $.steps[0].agency: unknown agency 'no-such-agency' (known: bank, business-registration, housing-fund, seal-engraving, social-security, tax)") }, "\(ps)")
        #expect(ps.contains { $0.hasSuffix("y.v1.json: $.extends: inherited step (\(base.path): $.steps[2].after[0]): unknown predecessor 'b'") }, "\(ps)")
    }

    @Test("extends names a missing version, itself, or an invalid base")
    func badBases() {
        let files = Files()
        let base = files.write("mini.v1.json", Self.base)
        let missing = files.write("m.json", #"{"id":"m","version":1,"extends":{"bundle":"mini","version":7},"title":"m","steps":[]}"#)
        let unpinned = files.write("u.json", #"{"id":"u","version":1,"extends":{"bundle":"mini"},"title":"u","steps":[]}"#)
        let loop1 = files.write("l1.json", #"{"id":"l1","version":1,"extends":{"bundle":"l2","version":1}}"#)
        let loop2 = files.write("l2.json", #"{"id":"l2","version":1,"extends":{"bundle":"l1","version":1}}"#)
        let broken = files.write("broken.json", Self.base.replacingOccurrences(of: #""id":"mini","version":1"#, with: #""id":"broken","version":1"#)
            .replacingOccurrences(of: "\"timeout\":\"1h\"", with: "\"timeout\":\"soon\""))
        let onBroken = files.write("ob.json", #"{"id":"ob","version":1,"extends":{"bundle":"broken","version":1},"title":"ob","steps":[]}"#)
        let ps = files.load([base, missing, unpinned, loop1, loop2, broken, onBroken]).problems.map(\.description)
        #expect(ps.contains("\(missing.path): $.extends: no bundle mini v7 to extend (there is: mini v1)"), "\(ps)")
        #expect(ps.contains { $0.hasPrefix("\(unpinned.path): $.extends: want {\"bundle\"") })
        #expect(ps.contains("\(loop1.path): $.extends: extends cycle: l2 v1 → l1 v1 → l2 v1"), "\(ps)")
        #expect(ps.contains { $0.hasPrefix("\(onBroken.path): $.extends: the base broken v1 has 4 problem(s); fix it first (\(broken.path): $.defaults.timeout: bad duration 'soon'") }, "\(ps)")
    }

    @Test("form references are checked along their whole path against the application form's schema")
    func wholeFormPaths() throws {
        let schema = try #require(library.formSchema)
        func path(_ s: String) -> [JSONValue.PathComponent] { JSONValue.parsePath(Substring(s))! }
        #expect(schema.problem(path("employees.expectedCount")) == nil)
        #expect(schema.problem(path("shareholders[0].idNumber")) == nil)
        #expect(schema.problem(path("employees.count")) == "form field 'employees' has no field 'count' (it has: expectedCount)")
        #expect(schema.problem(path("employees.expectedCount.x")) == "form field 'employees.expectedCount' has no fields (it is not an object), so not 'x'")
        // The filed form (deregistration) is an alternative: its fields pass, a typo in both fails.
        #expect(schema.problem(path("deregistration.reason")) == nil)
        #expect(schema.problem(path("company[0]")) == "form field 'company' is not a list, so it has no element [0]")
        #expect(schema.problem(path("shareholders[0].nmae"))?.hasPrefix("form field 'shareholders[0]' has no field 'nmae' (it has: contribution, idNumber, name)") == true)

        let text = ValidatorTests.mini([ValidatorTests.a.replacingOccurrences(of: "$.form.region", with: "$.form.employees.count") + "}"].joined())
        let ps = library.validator.validate(data: Data(text.utf8), file: "e.json").1.map(\.description)
        #expect(ps == ["e.json: $.steps[0].input.region: '$.form.employees.count': form field 'employees' has no field 'count' (it has: expectedCount)"])
        // $ref into $defs and oneOf branches are followed.
        let refs = FormSchema(try JSONValue.parse(##"{"type":"object","additionalProperties":false,"$defs":{"p":{"type":"object","properties":{"n":{"type":"string"}},"additionalProperties":false}},"properties":{"a":{"$ref":"#/$defs/p"},"b":{"oneOf":[{"type":"object","properties":{"x":{}}},{"type":"object","properties":{"y":{}},"additionalProperties":false}]}}}"##))
        #expect(refs.problem(path("a.n")) == nil && refs.problem(path("a.m")) != nil)
        #expect(refs.problem(path("b.y")) == nil)
        #expect(refs.problem(path("b.anything")) == nil)  // the first branch leaves other keys open
    }
}

/// `yishi bundles show`: input fields and the DAG as Mermaid and DOT.
@Suite struct BundleGraphTests {
    @Test func inputFieldsNameWhatRetrySetAccepts() throws {
        let b = bundle("convenience-store-opening")
        let i = try #require(b.stepIndex(of: "prepackaged-food-filing"))
        let fields = b.inputFields(of: i)
        #expect(fields.map(\.field) == ["address", "approvedName", "legalRepresentativeName", "materials", "uscc"])
        #expect(fields.first { $0.field == "uscc" }?.source == "$.steps.registration.outputs.uscc | $.licences.business-licence.uscc")
    }

    @Test func mermaidAndDotDrawEveryStepAndEdge() {
        let b = bundle("enterprise-opening")
        let edges = b.steps.reduce(0) { $0 + $1.predecessors.count }
        let mermaid = b.mermaid.split(separator: "\n")
        #expect(mermaid.first == "flowchart LR")
        #expect(mermaid.filter { $0.contains("-->") }.count == edges)
        #expect(mermaid.filter { $0.hasPrefix("  s") && $0.contains("[\"") }.count == b.steps.count)
        #expect(mermaid.contains("  s0 --> s1"))
        let dot = b.dot
        #expect(dot.hasPrefix("digraph \"enterprise-opening v1\" {"))
        #expect(dot.contains("  \"name-reservation\" -> \"registration\";"))
        #expect(dot.split(separator: "\n").filter { $0.contains(" -> ") }.count == edges)
    }
}
