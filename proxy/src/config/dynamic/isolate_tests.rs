//! Unit tests of `isolate.rs`: errors given to their elements.

use super::*;

fn err(key: &str) -> ConfigError {
    ConfigError {
        file: PathBuf::from("d.yml"),
        key: key.to_owned(),
        line: None,
        column: None,
        message: "bad".to_owned(),
    }
}

fn el(kind: ElementKind, name: &str, path: &str) -> Element {
    Element {
        kind,
        name: name.to_owned(),
        file: PathBuf::from("d.yml"),
        path: path.to_owned(),
    }
}

#[test]
fn errors_go_to_the_longest_matching_element_path() {
    let elements = [
        el(ElementKind::Router, "a", "http.routers.a"),
        el(ElementKind::Router, "a.b", "http.routers.a.b"),
        el(ElementKind::Service, "s", "http.services.s"),
    ];
    let a = attribute(
        &[
            err("http.routers.a.rule"),
            err("http.routers.a.b.service"),
            err("http.routers.ab.rule"),
            err("http.services.s.loadBalancer.servers[0].url"),
            err("htp"),
            err(""),
        ],
        &elements,
    );
    assert_eq!(a.by_element[&(ElementKind::Router, "a".into())].len(), 1);
    assert_eq!(a.by_element[&(ElementKind::Router, "a.b".into())].len(), 1);
    assert_eq!(a.by_element[&(ElementKind::Service, "s".into())].len(), 1);
    let keys: Vec<&str> = a.file_level.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["http.routers.ab.rule", "htp", ""]);
}
