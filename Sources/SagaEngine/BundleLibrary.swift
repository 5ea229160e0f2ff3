import Foundation

/// Every bundle version under a directory, validated and compiled, plus the catalogues and
/// calendars they were checked against. What the CLI and the orchestrator load at start.
public struct BundleLibrary: Sendable {
    public let catalogues: CatalogueSet
    public let calendars: [String: BusinessCalendar]
    /// Valid bundles, sorted by id then version.
    public let bundles: [CompiledBundle]
    /// Problems of every file that did not load; those files are left out of `bundles`.
    public let problems: [BundleProblem]
    /// JSON Schemas of the hub's event types (CloudEvents type → schema), for `trigger` checks and
    /// the application forms' shape.
    public var eventSchemas: [String: JSONValue] = [:]

    /// The application forms' schema the bundles' `$.form.…` references are checked against: the
    /// opening form (`cn.gov.yishi.application.submitted`) and the filed form of other matters
    /// (`cn.gov.yishi.application.filed`, e.g. deregistration), whichever are among `eventSchemas`;
    /// nil when neither is (only the first key is checked then).
    public var formSchema: FormSchema? { FormSchema.applicationForms(eventSchemas) }

    public var validator: BundleValidator { BundleValidator(catalogues: catalogues, calendars: calendars, eventSchemas: eventSchemas) }

    /// Bundles that start from an event (免申即享), newest version of each id.
    public var triggered: [CompiledBundle] {
        Dictionary(grouping: bundles.filter { $0.definition.trigger != nil }, by: \.id).values.compactMap { $0.last }.sorted { $0.id < $1.id }
    }

    /// Event schemas from `<dir>/*.schema.json`, each under every type its `x-cloudevents-types`
    /// lists (the files the hub's schema registry reads).
    /// - Throws: `ConfigError` when the directory is missing or a schema file is not JSON.
    public static func eventSchemas(directory: URL) throws -> [String: JSONValue] {
        try ConfigFile.checkDirectory(directory, setting: "schemas directory (--schemas, YISHI_SCHEMAS)")
        var out: [String: JSONValue] = [:]
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names.sorted() where name.hasSuffix(".schema.json") {
            let json = try ConfigFile.json(directory.appendingPathComponent(name))
            for t in json["x-cloudevents-types"]?.arrayValue ?? [] { if let t = t.stringValue { out[t] = json } }
        }
        return out
    }

    /// Loads catalogues from `<catalogues>/<agency>/catalogue.json`, calendars from `*.json` in
    /// `calendars`, and bundles from `*.json` in `bundles` (a missing bundle directory is empty).
    /// Event schemas come from `schemas` (default: the `schemas` directory beside `catalogues`);
    /// bundles' `$.form.…` references are checked along their whole path against the application
    /// forms' schemas among them. `serving`: when given, only these agencies are served; a bundle
    /// with a step on another agency is refused (`unservableAgency`), as is one on an agency
    /// without `mapping.json`.
    /// - Throws: `ConfigError` when a catalogue, calendar, the schemas directory or a schema cannot be read or parsed.
    public static func load(bundles: URL, catalogues: URL, calendars: URL, schemas: URL? = nil,
                            serving: Set<String>? = nil) throws -> BundleLibrary {
        let all = try CatalogueSet.load(directory: catalogues)
        let cats = serving.map { all.serving(only: $0) } ?? all
        var cals: [String: BusinessCalendar] = [:]
        try ConfigFile.checkDirectory(calendars, setting: "calendars directory (--calendars, YISHI_CALENDARS)")
        for file in try jsonFiles(in: calendars) {
            let c = try BusinessCalendar.load(file)
            cals[c.name] = c
        }
        let files = (try? jsonFiles(in: bundles)) ?? []
        // Given explicitly, the schemas directory must exist; the default beside the catalogues may not.
        let beside = catalogues.deletingLastPathComponent().appendingPathComponent("schemas")
        let events = schemas != nil || FileManager.default.fileExists(atPath: beside.path)
            ? try eventSchemas(directory: schemas ?? beside) : [:]
        return load(files: files, catalogues: cats, calendars: cals, eventSchemas: events)
    }

    /// Validates and compiles the given files; a second file with an already-seen id and version is
    /// a problem. A file may `extends` a version in `files` or in `bases` (files consulted only as
    /// bases, e.g. the bundle directory when `yishi bundles validate` checks one file); see
    /// `BundleComposer`. `eventSchemas` (CloudEvents type → schema) check triggers and, through the
    /// application forms' schemas among them, `$.form.…` references along their whole path.
    public static func load(files: [URL], catalogues: CatalogueSet, calendars: [String: BusinessCalendar],
                            eventSchemas: [String: JSONValue] = [:], bases: [URL] = []) -> BundleLibrary {
        let validator = BundleValidator(catalogues: catalogues, calendars: calendars, eventSchemas: eventSchemas)
        var compiled: [CompiledBundle] = []
        var problems: [BundleProblem] = []
        var seen: [String: String] = [:]
        var parsed: [String: JSONValue] = [:]
        var documents: [String: (file: String, json: JSONValue)] = [:]
        for url in files + bases where parsed[url.path] == nil {
            guard let data = try? Data(contentsOf: url), let json = try? JSONValue.parse(data) else { continue }
            parsed[url.path] = json
            if let id = json["id"]?.stringValue, let version = json["version"]?.intValue, documents["\(id) v\(version)"] == nil {
                documents["\(id) v\(version)"] = (url.path, json)
            }
        }
        let composer = BundleComposer(documents: documents, validator: validator)
        for url in files {
            let name = url.path
            let data: Data
            do { data = try Data(contentsOf: url) } catch {
                problems.append(BundleProblem(file: name, path: "$", kind: .syntax, message: ConfigFile.fileProblem(error, url: url)))
                continue
            }
            guard let json = parsed[name] else {
                problems += validator.validate(data: data, file: name).1  // the syntax error, with its place
                continue
            }
            let composed = composer.compose(json, file: name)
            guard composed.problems.isEmpty else { problems += composed.problems; continue }
            let (def, ps) = validator.validate(json: composed.json, file: name)
            problems += ps.map { composer.place($0, in: composed, file: name) }
            guard var def, let calendar = calendars[def.sla.calendar] else { continue }
            def.extends = json["extends"].flatMap { e in
                e["bundle"]?.stringValue.flatMap { id in e["version"]?.intValue.map { BundleDefinition.Base(bundle: id, version: $0) } }
            }
            let key = "\(def.id) v\(def.version)"
            if let other = seen[key] {
                problems.append(BundleProblem(file: name, path: "$.version", kind: .badValue, message: "\(key) is already defined in \(other); bump the version"))
                continue
            }
            seen[key] = name
            compiled.append(CompiledBundle(def, catalogues: catalogues, calendar: calendar, file: name))
        }
        compiled.sort { ($0.id, $0.version) < ($1.id, $1.version) }
        var library = BundleLibrary(catalogues: catalogues, calendars: calendars, bundles: compiled, problems: problems)
        library.eventSchemas = eventSchemas
        return library
    }

    /// Calendar coverage as of `at`: for each bundle, a saga submitted at `at` gets its deadline
    /// (and its longest step timeout) on the bundle's calendar; a year there that the calendar
    /// does not cover is a problem (`calendarNotCovered`, at `$.sla.calendar`), a provisional one
    /// a warning. `yishi bundles validate` reports both; the engine flags the same on each saga.
    public func calendarCoverage(at: Instant) -> (problems: [BundleProblem], warnings: [String]) {
        var problems: [BundleProblem] = [], warnings: [String] = []
        for b in bundles {
            guard let calendar = calendar(for: b) else { continue }
            let deadline = calendar.addWorkingTime(at, b.slaWorkingMs)
            let longest = b.steps.map(\.timeoutMs).max() ?? 0
            let end = max(deadline, calendar.addWorkingTime(at, longest))
            let gaps = calendar.gaps(from: at, to: end)
            let known = calendar.coveredYears.sorted().map(String.init).joined(separator: ", ")
            let file = b.file ?? "\(b.id) v\(b.version)"
            if !gaps.uncovered.isEmpty {
                problems.append(BundleProblem(
                    file: file, path: "$.sla.calendar", kind: .calendarNotCovered,
                    message: "a saga submitted \(calendar.localText(at)) is due \(calendar.localText(deadline)), in "
                        + "\(gaps.uncovered.map(String.init).joined(separator: ", ")), which calendar \(calendar.name) does not cover "
                        + "(it covers \(known)): add the year's holidays to the calendar file"))
            } else if !gaps.provisional.isEmpty {
                warnings.append("\(file): a saga submitted \(calendar.localText(at)) is due \(calendar.localText(deadline)) in "
                                + "\(gaps.provisional.map(String.init).joined(separator: ", ")), provisional on calendar \(calendar.name)")
            }
        }
        return (problems, warnings)
    }

    /// The version new sagas get.
    public func newest(_ id: String) -> CompiledBundle? { bundles.last { $0.id == id } }

    /// The version a running saga keeps.
    public func bundle(_ id: String, version: Int) -> CompiledBundle? { bundles.first { $0.id == id && $0.version == version } }

    public func calendar(for bundle: CompiledBundle) -> BusinessCalendar? { calendars[bundle.definition.sla.calendar] }

    /// `*.json` files directly in `dir`, sorted by name.
    public static func jsonFiles(in dir: URL) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") }.sorted()
            .map { dir.appendingPathComponent($0) }
    }
}
