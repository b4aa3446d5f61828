//! The manifests source: a directory of Kubernetes YAML/JSON manifests, re-read when it changes.
//!
//! Every `*.yaml`, `*.yml` and `*.json` file below the directory is read (hidden entries such as
//! a ConfigMap volume's `..data` are skipped; their content is reached through the visible
//! links). Files may hold several YAML documents and `kind: List` objects. A malformed object is
//! skipped with a warning naming the file and the object; everything else is served.
//!
//! A file that is not valid YAML (a typo, or a file caught half-written) keeps serving the
//! objects of its last good version, with a warning naming the file, the document and the line;
//! so does a file that changed while it was read or could not be read. A directory that cannot
//! be read changes nothing. Only a file that was never good contributes what it parses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::model::{self, ClusterObject, ModelError, ObjectKey, ObjectKind};
use super::{Batch, ClusterEvent, Sink};
use crate::k8s;

/// How often the directory is checked for changes. Polling (not inotify) also sees the
/// symlink swap a ConfigMap volume update makes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The result of reading the directory once.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub objects: Vec<ClusterObject>,
    /// One line per skipped object or unreadable file.
    pub warnings: Vec<String>,
}

impl Snapshot {
    /// The events that make an index equal to this snapshot, in one batch.
    pub fn into_events(self) -> Vec<ClusterEvent> {
        let mut by_kind: BTreeMap<ObjectKind, Vec<ClusterObject>> =
            ObjectKind::ALL.iter().map(|k| (*k, Vec::new())).collect();
        for object in self.objects {
            by_kind.entry(object.kind()).or_default().push(object);
        }
        let mut events: Vec<ClusterEvent> = by_kind
            .into_iter()
            .map(|(kind, objects)| ClusterEvent::Resync {
                kind,
                namespace: None,
                objects,
            })
            .collect();
        events.extend(ObjectKind::ALL.iter().map(|k| ClusterEvent::Synced(*k)));
        events
    }
}

/// Reads every manifest below `dir` once, with no memory of earlier reads: what each file
/// parses, and a warning for whatever could not be read. See [`Loader`] for the source's reads.
pub fn load(dir: &Path) -> Snapshot {
    let mut loader = Loader::default();
    loader.load(dir).unwrap_or_else(|warning| Snapshot {
        objects: Vec::new(),
        warnings: vec![warning],
    })
}

/// Reads the directory again and again, remembering each file's last good objects.
#[derive(Debug, Default)]
pub struct Loader {
    /// File → the objects of its last read that was whole valid YAML.
    good: BTreeMap<PathBuf, Vec<ClusterObject>>,
}

/// What one read of one file gave.
enum FileRead {
    /// Every document was valid YAML and the file did not change while it was read.
    Whole(Snapshot),
    /// Not valid YAML, changed while read, or unreadable: what could be parsed (if anything),
    /// and why it is not whole.
    Broken(Snapshot, String),
    /// The file is gone (deleted between the directory listing and the read).
    Gone,
}

impl Loader {
    /// Reads every manifest below `dir`. A file that is not whole serves its last good objects
    /// (or, never good, what it parses). An error reading the directory itself is returned, and
    /// the caller keeps serving what it has.
    pub fn load(&mut self, dir: &Path) -> Result<Snapshot, String> {
        let mut files = Vec::new();
        collect_files(dir, &mut files).map_err(|e| {
            format!(
                "{}: cannot read directory, keeping what is served: {e}",
                dir.display()
            )
        })?;
        files.sort();
        self.good
            .retain(|file, _| files.binary_search(file).is_ok());
        let mut snapshot = Snapshot::default();
        // Later files win on duplicate keys, as `kubectl apply` of the directory would.
        let mut seen: BTreeMap<(ObjectKind, ObjectKey), PathBuf> = BTreeMap::new();
        for file in files {
            let before = snapshot.objects.len();
            match read_file(&file) {
                FileRead::Whole(mut read) => {
                    self.good.insert(file.clone(), read.objects.clone());
                    snapshot.objects.append(&mut read.objects);
                    snapshot.warnings.append(&mut read.warnings);
                }
                FileRead::Broken(mut read, why) => {
                    snapshot.warnings.append(&mut read.warnings);
                    match self.good.get(&file) {
                        Some(good) => {
                            snapshot.warnings.push(format!(
                                "{}: {why}: keeping the {} objects of its last good version",
                                file.display(),
                                good.len()
                            ));
                            snapshot.objects.extend(good.iter().cloned());
                        }
                        None => snapshot.objects.append(&mut read.objects),
                    }
                }
                FileRead::Gone => {
                    self.good.remove(&file);
                }
            }
            for object in &snapshot.objects[before..] {
                let key = (object.kind(), object.key());
                if let Some(prev) = seen.insert(key.clone(), file.clone()) {
                    snapshot.warnings.push(format!(
                        "{}: {} {} also defined in {}; the later one wins",
                        file.display(),
                        key.0.as_str(),
                        key.1,
                        prev.display()
                    ));
                }
            }
        }
        keep_last_definitions(&mut snapshot.objects);
        Ok(snapshot)
    }
}

/// Reads and parses one file, checking it did not change meanwhile (a writer still at work).
fn read_file(file: &Path) -> FileRead {
    let stamp = |f: &Path| {
        std::fs::metadata(f)
            .ok()
            .map(|m| (m.len(), m.modified().ok()))
    };
    let before = stamp(file);
    let text = match std::fs::read(file) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                return FileRead::Broken(Snapshot::default(), format!("not UTF-8 ({e})"));
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return FileRead::Gone,
        Err(e) => return FileRead::Broken(Snapshot::default(), format!("cannot read: {e}")),
    };
    let mut read = Snapshot::default();
    let valid = parse_text(&text, file, &mut read);
    if stamp(file) != before {
        FileRead::Broken(read, "changed while it was read".into())
    } else if !valid {
        FileRead::Broken(read, "not valid YAML".into())
    } else {
        FileRead::Whole(read)
    }
}

/// Keeps the last definition of each key.
fn keep_last_definitions(objects: &mut Vec<ClusterObject>) {
    let mut last: BTreeMap<(ObjectKind, ObjectKey), usize> = BTreeMap::new();
    for (i, o) in objects.iter().enumerate() {
        last.insert((o.kind(), o.key()), i);
    }
    if last.len() != objects.len() {
        let keep: std::collections::HashSet<usize> = last.into_values().collect();
        let mut i = 0;
        objects.retain(|_| {
            i += 1;
            keep.contains(&(i - 1))
        });
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        // metadata() follows symlinks, as ConfigMap volumes need.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            collect_files(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// Parses one file's text (YAML documents, JSON being YAML too) into `snapshot`. Returns
/// whether every document was valid YAML (an object that is not a valid Kubernetes object is
/// skipped with a warning, and does not count).
///
/// Documents are numbered in warnings as they are read, not counting empty ones.
pub fn parse_text(text: &str, file: &Path, snapshot: &mut Snapshot) -> bool {
    let mut input = text.as_bytes();
    let mut documents =
        serde_saphyr::read_with_options::<_, Value>(&mut input, yaml_options()).peekable();
    let mut index = 0;
    let mut valid = true;
    while let Some(document) = documents.next() {
        index += 1;
        match document {
            Ok(Value::Null) => {}
            Ok(value) => add_value(value, file, snapshot),
            // After a syntax error the parser cannot resume: the iterator ends. After any
            // other error (a key JSON cannot hold, a duplicate key) it goes on at the next `---`.
            Err(e) => {
                valid = false;
                snapshot.warnings.push(format!(
                    "{}: document {index}: not valid YAML, skipped{}: {}",
                    file.display(),
                    if documents.peek().is_none() {
                        " with the rest of the file"
                    } else {
                        ""
                    },
                    one_line(&e.render_with_formatter(&serde_saphyr::UserMessageFormatter))
                ));
            }
        }
    }
    valid
}

/// serde-saphyr's default budget bounds sizes for untrusted input; a manifests directory is the
/// operator's own and may be large, so only a nesting depth limit (128, as serde_yaml had) and
/// the alias expansion limits (billion laughs) stay.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_reader_input_bytes: None,
            max_events: usize::MAX,
            max_nodes: usize::MAX,
            max_documents: usize::MAX,
            max_total_scalar_bytes: usize::MAX,
            max_depth: 128,
        },
    }
}

/// A warning is one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn add_value(value: Value, file: &Path, snapshot: &mut Snapshot) {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if kind == "List" || (kind.ends_with("List") && value.get("items").is_some()) {
        let items = match value.get("items") {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::Null) | None => Vec::new(),
            Some(_) => {
                snapshot
                    .warnings
                    .push(format!("{}: {kind}: items is not a list", file.display()));
                return;
            }
        };
        for item in items {
            add_value(item, file, snapshot);
        }
        return;
    }
    let label = object_label(&value, &kind);
    let converted = match (kind.as_str(), api_version.as_str()) {
        ("Namespace", "v1") => convert::<k8s::Namespace, _>(value, model::Namespace::from_api)
            .map(ClusterObject::Namespace),
        ("Service", "v1") => {
            convert::<k8s::Service, _>(value, model::Service::from_api).map(ClusterObject::Service)
        }
        ("EndpointSlice", "discovery.k8s.io/v1") => {
            convert::<k8s::EndpointSlice, _>(value, model::EndpointSet::from_api)
                .map(ClusterObject::EndpointSet)
        }
        ("Pod", "v1") => {
            convert::<k8s::Pod, _>(value, model::Pod::from_api).map(ClusterObject::Pod)
        }
        ("ServiceImport", "multicluster.x-k8s.io/v1alpha1") => {
            convert::<k8s::ServiceImport, _>(value, model::ServiceImport::from_api)
                .map(ClusterObject::ServiceImport)
        }
        ("Namespace" | "Service" | "EndpointSlice" | "Pod" | "ServiceImport", other) => {
            Err(format!(
                "apiVersion {other:?} is not supported (want {})",
                match kind.as_str() {
                    "EndpointSlice" => "discovery.k8s.io/v1",
                    "ServiceImport" => "multicluster.x-k8s.io/v1alpha1",
                    _ => "v1",
                }
            ))
        }
        _ => {
            tracing::debug!(file = %file.display(), kind = %kind, "skipping object of a kind DNS does not use");
            return;
        }
    };
    match converted {
        Ok(object) => snapshot.objects.push(object),
        Err(e) => snapshot
            .warnings
            .push(format!("{}: {label}: skipped: {e}", file.display())),
    }
}

/// `Service shop/web`, from whatever metadata there is.
fn object_label(value: &Value, kind: &str) -> String {
    let meta = value.get("metadata");
    let field = |k: &str| {
        meta.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let (ns, name) = (field("namespace"), field("name"));
    let kind = if kind.is_empty() {
        "object without kind"
    } else {
        kind
    };
    match (ns, name) {
        ("", "") => format!("{kind} (unnamed)"),
        ("", name) => format!("{kind} {name}"),
        (ns, name) => format!("{kind} {ns}/{name}"),
    }
}

fn convert<A, T>(value: Value, from_api: fn(&A) -> Result<T, ModelError>) -> Result<T, String>
where
    A: serde::de::DeserializeOwned,
{
    let api: A = serde_json::from_value(value).map_err(|e| e.to_string())?;
    from_api(&api).map_err(|e| e.to_string())
}

/// What identifies the directory's content without reading it: every file's path, size and
/// modification time. A change in it triggers a reload.
pub fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut files = Vec::new();
    let _ = collect_files(dir, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(&f).ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            let modified = meta.and_then(|m| m.modified().ok());
            (f, len, modified)
        })
        .collect()
}

/// Loads `dir` and keeps watching it on a thread of its own, sending a new complete set to
/// `sink` whenever the files change, until `stop` is set or the sink's receiver is gone.
pub fn spawn(
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    sink: Sink,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("manifests".into())
        .spawn(move || {
            let mut loader = Loader::default();
            let mut last = None;
            while !stop.load(Ordering::Relaxed) {
                let now = fingerprint(&dir);
                if last.as_ref() != Some(&now) {
                    if last.is_some() {
                        tracing::info!(dir = %dir.display(), "manifests changed, reloading");
                    }
                    last = Some(now);
                    if let Some(batch) = publish(&dir, &mut loader)
                        && sink.blocking_send(batch).is_err()
                    {
                        return;
                    }
                }
                std::thread::sleep(POLL_INTERVAL);
            }
        })
}

/// The batch for the directory as it reads now; `None` (and a warning) when it cannot be read.
fn publish(dir: &Path, loader: &mut Loader) -> Option<Batch> {
    let snapshot = match loader.load(dir) {
        Ok(snapshot) => snapshot,
        Err(warning) => {
            tracing::warn!("manifests: {warning}");
            return None;
        }
    };
    for w in &snapshot.warnings {
        tracing::warn!("manifests: {w}");
    }
    tracing::info!(
        dir = %dir.display(),
        objects = snapshot.objects.len(),
        skipped = snapshot.warnings.len(),
        "manifests loaded"
    );
    Some(Batch::new(snapshot.into_events()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Snapshot {
        let mut s = Snapshot::default();
        parse_text(text, Path::new("t.yaml"), &mut s);
        s
    }

    #[test]
    fn multi_document_yaml_and_lists_are_both_read() {
        let s = parse(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: b}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c, namespace: a}\n",
        );
        let names: Vec<String> = s.objects.iter().map(|o| o.key().name).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn malformed_object_is_skipped_with_a_warning_naming_file_and_object() {
        let s = parse(
            "apiVersion: v1\nkind: Service\nmetadata: {name: bad, namespace: a}\nspec: {clusterIP: nonsense}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n",
        );
        assert_eq!(s.objects.len(), 1);
        assert_eq!(s.warnings.len(), 1);
        assert!(
            s.warnings[0].starts_with("t.yaml: Service a/bad: skipped:"),
            "{}",
            s.warnings[0]
        );
    }

    #[test]
    fn a_service_import_with_a_bad_ip_is_skipped_with_a_warning_naming_it() {
        let s = parse(
            "apiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceImport\nmetadata: {name: bad, namespace: a}\nspec: {type: ClusterSetIP, ips: [10.96.0.300]}\n---\napiVersion: multicluster.x-k8s.io/v1alpha1\nkind: ServiceImport\nmetadata: {name: good, namespace: a}\nspec: {type: Headless}\n",
        );
        assert_eq!(s.objects.len(), 1);
        assert_eq!(s.objects[0].kind(), ObjectKind::ServiceImport);
        assert_eq!(s.warnings.len(), 1);
        assert!(
            s.warnings[0].starts_with("t.yaml: ServiceImport a/bad: skipped: spec.ips:"),
            "{}",
            s.warnings[0]
        );
    }

    #[test]
    fn json_is_accepted() {
        let s = parse(r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"j"}}"#);
        assert_eq!(s.objects.len(), 1);
    }

    #[test]
    fn a_syntax_error_keeps_the_documents_before_it_and_names_file_document_and_line() {
        let s = parse(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: [b\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: c}\n",
        );
        let names: Vec<String> = s.objects.iter().map(|o| o.key().name).collect();
        assert_eq!(names, ["a"]);
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        let w = &s.warnings[0];
        assert!(
            w.starts_with(
                "t.yaml: document 2: not valid YAML, skipped with the rest of the file: "
            ),
            "{w}"
        );
        assert!(w.contains("line 7"), "{w}");
        assert!(!w.contains('\n'), "{w}");
    }

    #[test]
    fn empty_documents_comments_and_odd_keys_of_unused_kinds_are_fine() {
        let s = parse(
            "# leading comment\n---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: a}\ndata: {1: one, true: yes}\n---\n# only a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n...\n",
        );
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let names: Vec<String> = s.objects.iter().map(|o| o.key().name).collect();
        assert_eq!(names, ["a"]);
    }

    #[test]
    fn a_document_json_cannot_hold_is_skipped_and_the_next_one_read() {
        // A duplicate key, and a null key (kubectl, converting to JSON, refuses both).
        let s = parse(
            "apiVersion: v1\nkind: Namespace\nkind: Service\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: a}\ndata: {~: none}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n",
        );
        let names: Vec<String> = s.objects.iter().map(|o| o.key().name).collect();
        assert_eq!(names, ["b"]);
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
        assert!(
            s.warnings[0].starts_with("t.yaml: document 1: not valid YAML, skipped: ")
                && s.warnings[0].contains("line 3"),
            "{}",
            s.warnings[0]
        );
        assert!(
            s.warnings[1].starts_with("t.yaml: document 2: not valid YAML, skipped: ")
                && s.warnings[1].contains("line 9"),
            "{}",
            s.warnings[1]
        );
    }

    #[test]
    fn anchors_and_merge_keys_are_resolved() {
        let s = parse(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: &m {name: web, namespace: shop}\n  spec: {clusterIP: 10.0.0.1, ports: [{port: 80}]}\n- apiVersion: v1\n  kind: Service\n  metadata:\n    <<: *m\n    name: api\n  spec: {clusterIP: 10.0.0.2, ports: [{port: 80}]}\n",
        );
        let names: Vec<String> = s.objects.iter().map(|o| o.key().name).collect();
        assert_eq!(names, ["web", "api"]);
        let namespaces: Vec<String> = s.objects.iter().map(|o| o.key().namespace).collect();
        assert_eq!(namespaces, ["shop", "shop"]);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn large_files_are_not_cut_by_parser_budgets() {
        // More documents than serde-saphyr's default budget allows, and one List with more
        // nodes than it allows.
        let mut text = String::new();
        for i in 0..1_500 {
            text.push_str(&format!(
                "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: n{i}}}\n"
            ));
        }
        text.push_str("---\napiVersion: v1\nkind: List\nitems:\n");
        for i in 0..14_000 {
            text.push_str(&format!(
                "- {{apiVersion: v1, kind: Service, metadata: {{name: s{i}, namespace: n0, labels: {{a: b, c: d}}}}, spec: {{clusterIP: None, ports: [{{name: p, port: 80, protocol: TCP}}]}}}}\n"
            ));
        }
        let s = parse(&text);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings.first());
        assert_eq!(s.objects.len(), 15_500);
    }

    fn names(s: &Snapshot) -> Vec<String> {
        let mut names: Vec<String> = s.objects.iter().map(|o| o.key().name).collect();
        names.sort();
        names
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "clusterdns-manifests-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const TWO: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b}\n";

    #[test]
    fn a_file_that_stops_parsing_keeps_its_last_good_objects_until_fixed() {
        let dir = scratch_dir("last-good");
        std::fs::write(dir.join("one.yaml"), TWO).unwrap();
        std::fs::write(
            dir.join("other.yaml"),
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: o}\n",
        )
        .unwrap();
        let mut loader = Loader::default();
        assert_eq!(names(&loader.load(&dir).unwrap()), ["a", "b", "o"]);
        // Cut in the middle of the second document (a half-written file), then a typo.
        for broken in [
            &TWO[..TWO.len() - 8],
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: [a\n",
        ] {
            std::fs::write(dir.join("one.yaml"), broken).unwrap();
            let s = loader.load(&dir).unwrap();
            assert_eq!(names(&s), ["a", "b", "o"], "{broken:?}");
            assert!(
                s.warnings.iter().any(|w| w.contains(
                    "one.yaml: not valid YAML: keeping the 2 objects of its last good version"
                )),
                "{:?}",
                s.warnings
            );
            assert!(
                s.warnings.iter().any(|w| w.contains("line ")),
                "{:?}",
                s.warnings
            );
        }
        // Fixed: the new content is served; removed: its objects go.
        std::fs::write(
            dir.join("one.yaml"),
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: c}\n",
        )
        .unwrap();
        assert_eq!(names(&loader.load(&dir).unwrap()), ["c", "o"]);
        std::fs::remove_file(dir.join("one.yaml")).unwrap();
        assert_eq!(names(&loader.load(&dir).unwrap()), ["o"]);
        // A file that was never good contributes what parses, as before.
        std::fs::write(dir.join("new.yaml"), &TWO[..TWO.len() - 8]).unwrap();
        assert_eq!(names(&loader.load(&dir).unwrap()), ["a", "o"]);
        // An unreadable directory is an error: the caller changes nothing.
        std::fs::remove_dir_all(&dir).unwrap();
        let err = loader.load(&dir).unwrap_err();
        assert!(err.contains("cannot read directory"), "{err}");
        assert!(load(&dir).objects.is_empty());
    }

    #[test]
    fn wrong_api_version_of_a_known_kind_is_a_warning() {
        let s = parse(
            "apiVersion: discovery.k8s.io/v1beta1\nkind: EndpointSlice\nmetadata: {name: s, namespace: a}\naddressType: IPv4\nendpoints: []\n",
        );
        assert!(s.objects.is_empty());
        assert!(s.warnings[0].contains("apiVersion"), "{}", s.warnings[0]);
    }
}
