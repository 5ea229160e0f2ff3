import Foundation
import Testing
@testable import SagaEngine

/// Random interleavings of agency answers (duplicated, reordered, late, stale), timer races and
/// operator actions, checked against the engine's invariants after every input.
@Suite struct PropertyTests {
    /// 4 × 2,500 = 10,000 interleavings; split so the test runner can use both cores.
    @Test(arguments: [
        ("enterprise-opening", UInt64(1)), ("restaurant-opening", 2), ("convenience-store-opening", 3), ("barbershop-opening", 4),
    ])
    func randomInterleavingsKeepTheInvariants(bundleId: String, seed: UInt64) throws {
        var finals: [SagaStatus: Int] = [:]
        for run in 0..<2_500 {
            var interleaving = Interleaving(bundleId: bundleId, seed: seed &* 1_000_003 &+ UInt64(run))
            let status = try interleaving.run()
            finals[status, default: 0] += 1
        }
        // The generator must actually reach the interesting ends, or the checks prove little.
        for s in [SagaStatus.completed, .compensated, .cancelled, .failed] { #expect(finals[s, default: 0] > 20, "\(s) reached \(finals[s, default: 0]) times") }
    }
}

struct Interleaving {
    var h: Harness
    var rng: SplitMix64
    /// Requests out at agencies; an answered one may stay here to be answered again (duplicates, late replies).
    var outstanding: [(cmd: StepCommand, compensation: Bool)] = []
    var timers: [TimerKey: Instant] = [:]
    var cancelledTimers: [TimerKey: Instant] = [:]
    var opCount = 0
    // Observations for the invariants.
    var completions = Set<String>()               // "step#attempt"
    var completionOrder: [String] = []            // steps that succeeded (or were resolved), in order
    var compensatedOrder: [String] = []
    /// Steps whose last forward request timed out with no accepted success since: outcome unknown.
    var unknown = Set<String>()
    var lateSuccesses = Set<String>()
    let seed: UInt64
    /// Sees the state after every applied input (the codec's round-trip test hooks in here).
    var observe: ((SagaState) -> Void)?

    init(bundleId: String, seed: UInt64) {
        h = Harness(bundleId, sagaId: "saga-P\(seed)")
        rng = SplitMix64(seed: seed)
        self.seed = seed
    }

    mutating func run() throws -> SagaStatus {
        try step(.submit(form: sampleForm, licences: [:]))
        var budget = 120
        while !h.state.status.isFinal && budget > 0 {
            budget -= 1
            h.now = h.now + Int64(rng.next() % 120_000)
            let roll = rng.next() % 100
            if roll < 55, !outstanding.isEmpty {
                try answer()
            } else if roll < 75, let (key, due) = pickTimer() {
                try step(.timerFired(key), at: Instant(ms: max(due.ms, h.now.ms)))
            } else if roll < 85, !h.log.isEmpty {
                // A duplicate of any earlier input, exactly as first delivered.
                let old = h.log[Int(rng.next() % UInt64(h.log.count))]
                let before = h.state
                let out = SagaEngine.apply(to: &h.state, old, bundle: h.bundle, calendar: calendar)
                if out.audits.contains(where: { $0.kind == .lateSuccess }) {
                    // The one exception: a success for a step given up on after a timeout (ignored
                    // while a retry was out) is evidence that the agency acted; it counts once.
                    h.state = before
                    try step(old.event, at: old.at)
                } else {
                    #expect(h.state == before, "seed \(seed): duplicate \(old.event) changed the state")
                    #expect(out.allSatisfy { if case .audit(let a) = $0 { return a.kind == .inputIgnored }; return false })
                }
            } else {
                try operatorAction()
            }
        }
        // After the end: a late success for a step the saga gave up on, then let the
        // compensation it leads to run out.
        if [.failed, .compensated, .cancelled].contains(h.state.status), rng.chance(0.7),
           let late = outstanding.first(where: { !$0.compensation && unknown.contains($0.cmd.step) }) {
            let st = h.bundle.steps[h.bundle.stepIndex(of: late.cmd.step)!]
            try step(.stepSucceeded(step: late.cmd.step, attempt: late.cmd.attempt, outputs: outputs(for: st, tag: "#late")))
        }
        var drain = 80
        while h.state.status == .compensating && drain > 0 {
            drain -= 1
            h.now = h.now + 60_000
            if h.state.paused {
                opCount += 1
                try step(.operatorCommand(OperatorCommand(id: "op-\(opCount)", by: "operator:test", .resume)))
            } else if let i = outstanding.firstIndex(where: { $0.compensation }) {
                let (cmd, _) = outstanding.remove(at: i)
                try step(.compensationSucceeded(step: cmd.step, attempt: cmd.attempt))
            } else if let i = h.state.steps.firstIndex(where: { $0.status == .compensationFailed }) {
                opCount += 1
                try step(.operatorCommand(OperatorCommand(id: "op-\(opCount)", by: "operator:test",
                                                          .resolveManually(step: h.bundle.steps[i].id, outputs: [:], note: "undone by hand"))))
            } else if let (key, due) = timers.min(by: { $0.value < $1.value }).map({ ($0.key, $0.value) }) {
                try step(.timerFired(key), at: Instant(ms: max(due.ms, h.now.ms)))
            } else { break }
        }
        try checkEnd()
        return h.state.status
    }

    mutating func pickTimer() -> (TimerKey, Instant)? {
        // Mostly live timers; sometimes one that was cancelled (it lost a race but fires anyway).
        if !cancelledTimers.isEmpty, rng.chance(0.15) {
            let k = Array(cancelledTimers.keys)[Int(rng.next() % UInt64(cancelledTimers.count))]
            return (k, cancelledTimers[k]!)
        }
        guard !timers.isEmpty else { return nil }
        let keys = timers.keys.sorted { timers[$0]! < timers[$1]! }
        let k = keys[Int(rng.next() % UInt64(min(keys.count, 3)))]
        return (k, timers[k]!)
    }

    mutating func answer() throws {
        let i = Int(rng.next() % UInt64(outstanding.count))
        let (cmd, comp) = outstanding[i]
        if rng.chance(0.8) { outstanding.remove(at: i) }  // else it may be answered again later
        if comp {
            if rng.chance(0.8) { try step(.compensationSucceeded(step: cmd.step, attempt: cmd.attempt)) }
            else { try step(.compensationFailed(step: cmd.step, attempt: cmd.attempt, code: rng.chance(0.7) ? "UNAVAILABLE" : "INVALID_REQUEST", message: "x")) }
            return
        }
        let st = h.bundle.steps[h.bundle.stepIndex(of: cmd.step)!]
        let r = rng.next() % 100
        if r < 70 {
            try step(.stepSucceeded(step: cmd.step, attempt: cmd.attempt, outputs: outputs(for: st, tag: "#\(cmd.attempt)")))
        } else if r < 85 {
            try step(.stepFailed(step: cmd.step, attempt: cmd.attempt, code: rng.chance(0.8) ? "UNAVAILABLE" : "INVALID_REQUEST", message: "x"))
        } else if r < 92 {
            try step(.stepRejected(step: cmd.step, attempt: cmd.attempt, code: "INVALID_REQUEST", reason: "bad", field: nil))
        } else {
            let deferrable = st.deferrableMaterials.sorted()
            let materials = deferrable.isEmpty || rng.chance(0.2) ? ["lease-contract"] : [deferrable[Int(rng.next() % UInt64(deferrable.count))]]
            try step(.supplementNeeded(step: cmd.step, attempt: cmd.attempt, materials: materials))
        }
    }

    mutating func operatorAction() throws {
        opCount += 1
        let id = "op-\(opCount)"
        let steps = h.bundle.steps.map(\.id)
        let pick = steps[Int(rng.next() % UInt64(steps.count))]
        // Prefer acting on a step that needs attention, like an operator would.
        let attention = h.state.steps.indices.filter { [.failed, .waitingSupplement, .compensationFailed, .backoff].contains(h.state.steps[$0].status) }
        let target = attention.isEmpty ? pick : steps[attention[Int(rng.next() % UInt64(attention.count))]]
        let r = rng.next() % 100
        let action: OperatorCommand.Action
        if r < 30 {
            let si = h.bundle.stepIndex(of: target)!
            if h.state.steps[si].status == .waitingSupplement, rng.chance(0.7) {
                return try step(.supplementProvided(step: target, attempt: Int(h.state.steps[si].attempt), materials: ["m": "v"]))
            }
            action = .retry(step: target, correctedInput: rng.chance(0.5) ? ["note": "fixed"] : nil)
        } else if r < 45 {
            action = .skip(step: target, reason: "done elsewhere")
        } else if r < 60 {
            action = .resolveManually(step: target, outputs: outputs(for: h.bundle.steps[h.bundle.stepIndex(of: target)!]), note: "by hand")
        } else if r < 72 {
            action = .cancel(reason: "withdrawn")
        } else if r < 79 {
            action = .pause(reason: "check")
        } else if r < 86 {
            action = .pauseStep(step: target, reason: "ask the agency first")
        } else if r < 93 {
            action = .resume
        } else {
            action = .resumeStep(step: target)
        }
        try step(.operatorCommand(OperatorCommand(id: id, by: "operator:test", action)))
    }

    /// Applies one input and checks the per-transition invariants.
    mutating func step(_ event: SagaEvent, at t: Instant? = nil) throws {
        let before = h.state
        let out = h.apply(event, at: t)
        let input = h.log.last!
        observe?(h.state)

        // Applying the very same input again changes nothing and yields only an "ignored" audit.
        var again = h.state
        let out2 = SagaEngine.apply(to: &again, input, bundle: h.bundle, calendar: calendar)
        #expect(again == h.state, "seed \(seed): immediate duplicate of \(event) changed the state")
        #expect(out2.count == 1 && out2.audits.first?.kind == .inputIgnored)

        if out.isIgnored { #expect(h.state == before, "seed \(seed): ignored input changed the state") }
        else { #expect(h.state.seq == before.seq + 1) }
        #expect(!out.audits.isEmpty, "every input yields an audit event")

        for o in out {
            switch o {
            case .dispatch(let c):
                let i = h.bundle.stepIndex(of: c.step)!
                for p in h.bundle.steps[i].predecessors {
                    #expect(h.state.steps[p].status.isDone, "seed \(seed): \(c.step) dispatched before \(h.bundle.steps[p].id) finished")
                }
                #expect(!h.state.paused && (h.state.status == .running || h.state.status == .manual))
                #expect(!h.state.steps[i].isPaused, "seed \(seed): \(c.step) dispatched while held")
                outstanding.append((c, false))
            case .compensate(let c):
                outstanding.append((c, true))
            case .scheduleTimer(let t):
                timers[t.key] = t.due
            case .cancelTimer(let t):
                timers[t.key] = nil
                cancelledTimers[t.key] = t.due
            case .audit(let a):
                switch a.kind {
                case .stepSucceeded:
                    #expect(completions.insert("\(a.step!)#\(a.attempt!)").inserted, "seed \(seed): second completion of \(a.step!) attempt \(a.attempt!)")
                    #expect(!completionOrder.contains(a.step!), "seed \(seed): \(a.step!) completed twice")
                    completionOrder.append(a.step!)
                    unknown.remove(a.step!)
                case .stepTimedOut:
                    unknown.insert(a.step!)
                case .lateSuccess:
                    #expect(unknown.contains(a.step!), "seed \(seed): late success of \(a.step!), which never timed out")
                    #expect(!lateSuccesses.contains(a.step!), "seed \(seed): second late success of \(a.step!)")
                    lateSuccesses.insert(a.step!)
                case .stepResolvedManually where before.status != .compensating:
                    completionOrder.append(a.step!)
                case .compensationSucceeded:
                    #expect(!compensatedOrder.contains(a.step!), "seed \(seed): \(a.step!) compensated twice")
                    compensatedOrder.append(a.step!)
                case .stepResolvedManually:
                    compensatedOrder.append(a.step!)
                default: break
                }
            case .finished, .licenceIssued, .manualCaseOpened: break
            }
        }
        // Fired timers are gone (their key may be re-armed by this very transition).
        if case .timerFired(let k) = event, !out.isIgnored, !out.scheduled.contains(where: { $0.key == k }) { timers[k] = nil }
    }

    mutating func checkEnd() throws {
        let s = h.state
        let compensable = { (step: String) in self.h.bundle.steps[self.h.bundle.stepIndex(of: step)!].compensationAction != nil }
        let completedCompensable = completionOrder.filter(compensable)
        // Unknown outcome: timed out, never accepted as a success since (a late success included).
        let unknownCompensable = Set(unknown.filter(compensable)).subtracting(completedCompensable)
        if s.status == .compensated || s.status == .cancelled {
            // Completed steps are undone in reverse completion order; unconfirmed ones before them.
            #expect(compensatedOrder.filter { completedCompensable.contains($0) } == completedCompensable.reversed(),
                    "seed \(seed): compensated \(compensatedOrder), completed \(completionOrder)")
            #expect(Set(compensatedOrder) == Set(completedCompensable).union(unknownCompensable),
                    "seed \(seed): compensated \(compensatedOrder), completed \(completionOrder), unknown \(unknown.sorted())")
        } else if s.status == .failed {
            // `fail` keeps confirmed work; it never leaves a step whose outcome is unknown.
            #expect(Set(compensatedOrder) == unknownCompensable, "seed \(seed): failed; compensated \(compensatedOrder), unknown \(unknown.sorted())")
        } else {
            #expect(compensatedOrder.isEmpty || s.status == .compensating)
        }
        // Every compensable step whose outcome is succeeded-or-unknown ends compensated when the
        // saga ends compensated or cancelled (for failed: the unknown ones).
        if [.failed, .compensated, .cancelled].contains(s.status) {
            let mustBeUndone = s.status == .failed ? unknownCompensable : Set(completedCompensable).union(unknownCompensable)
            for step in mustBeUndone {
                #expect(s.steps[h.bundle.stepIndex(of: step)!].status == .compensated, "seed \(seed): \(step) is \(s.steps[h.bundle.stepIndex(of: step)!].status) at \(s.status)")
            }
        }
        if s.status == .completed { #expect(s.steps.allSatisfy { $0.status.isDone }) }

        // Replaying the input log reproduces the state and the outputs exactly.
        var replayed = SagaState(sagaId: s.sagaId, bundle: h.bundle)
        var replayOut: [SagaOutput] = []
        for input in h.log { replayOut += SagaEngine.apply(to: &replayed, input, bundle: h.bundle, calendar: calendar) }
        #expect(replayed == s, "seed \(seed): replay diverged")
        #expect(replayOut == h.outputs, "seed \(seed): replay produced different outputs")
    }
}
