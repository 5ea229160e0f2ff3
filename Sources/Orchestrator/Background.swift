import Dispatch

/// A value computed on another thread (a global dispatch queue), for work that runs beside the
/// caller's, e.g. a restore's timers and finished-saga index built while the sagas are installed.
/// `wait()` blocks until the value is there and returns it; call it once.
final class Background<Value>: @unchecked Sendable {
    // @unchecked: `value` is written once by the worker before `group` is left, and read only
    // after `group.wait()` returned.
    private var value: Value?
    private let group = DispatchGroup()

    init(_ work: @escaping @Sendable () -> Value) {
        group.enter()
        DispatchQueue.global().async { [self] in
            value = work()
            group.leave()
        }
    }

    func wait() -> Value {
        group.wait()
        return value!
    }
}
