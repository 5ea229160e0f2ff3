extension Array {
    /// `count` copies of `value`, like `Array(repeating:count:)`. That initializer (and
    /// `init(unsafeUninitializedCapacity:)`) allocates through the standard library's
    /// unspecialized path, which looks up the storage class's generic metadata on every call
    /// (about 550 instructions, more than filling the few elements a step or a bundle has);
    /// `reserveCapacity` on an empty array allocates through the specialized, cached path.
    @inline(__always)
    static func filled(_ value: Element, count: Int) -> [Element] {
        var a: [Element] = []
        a.reserveCapacity(count)
        for _ in 0..<count { a.append(value) }
        return a
    }
}
