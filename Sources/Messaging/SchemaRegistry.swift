import Foundation

/// CloudEvents `type` → the schema its data must satisfy.
public struct SchemaRegistry: Sendable {
    public private(set) var schemas: [String: JSONSchema] = [:]

    public init() {}

    /// The hub's message schemas: every `*.schema.json` in `directory` (the repository's `schemas/`),
    /// registered under each type its `x-cloudevents-types` lists.
    public static func load(directory: URL) throws(SchemaLoadError) -> SchemaRegistry {
        var registry = SchemaRegistry()
        for file in try files(in: directory) {
            let schema = try JSONSchema(contentsOf: file)
            guard !schema.cloudEventTypes.isEmpty else {
                throw SchemaLoadError(file: file.path, pointer: "", message: "no 'x-cloudevents-types': which message types does it check?")
            }
            for type in schema.cloudEventTypes { try registry.register(schema, for: type) }
        }
        return registry
    }

    /// A department's native schemas (`adapters/<agency>/native`): `SWDJ.request.schema.json` is the
    /// data of type `cn.gov.yishi.dept.<agency>.SWDJ.request` (see `MessageType.native`).
    public mutating func loadNative(directory: URL, agency: String) throws(SchemaLoadError) {
        for file in try Self.files(in: directory) {
            let name = String(file.lastPathComponent.dropLast(".schema.json".count))
            try register(try JSONSchema(contentsOf: file), for: MessageType.native(agency: agency, message: name))
        }
    }

    public mutating func register(_ schema: JSONSchema, for type: String) throws(SchemaLoadError) {
        if let existing = schemas[type] {
            throw SchemaLoadError(file: schema.file ?? "<inline>", pointer: "",
                                  message: "type '\(type)' already has a schema (\(existing.file ?? "<inline>"))")
        }
        schemas[type] = schema
    }

    public subscript(type: String) -> JSONSchema? { schemas[type] }

    private static func files(in directory: URL) throws(SchemaLoadError) -> [URL] {
        do {
            return try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
                .filter { $0.lastPathComponent.hasSuffix(".schema.json") }
                .sorted { $0.lastPathComponent < $1.lastPathComponent }
        } catch {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory)
            throw SchemaLoadError(file: directory.path, pointer: "", message: "schema directory (--schemas, YISHI_SCHEMAS): "
                                  + (!exists ? "no such directory" : !isDirectory.boolValue ? "not a directory" : "cannot be listed"))
        }
    }
}
