//! Loading from disk: a directory of files, one file, bad extensions.

use super::super::*;
use super::support::*;

#[test]
fn directory_merge_keeps_first_and_warns() {
    let dir = TempDir::new("merge");
    dir.write(
        "a.yml",
        "http:\n  routers:\n    r:\n      rule: Path(`/a`)\n      service: s\n",
    );
    dir.write(
        "b/services.toml",
        "[http.services.s.loadBalancer]\nservers = [{ url = \"http://a\" }]\n[http.routers.r]\nrule = \"Path(`/b`)\"\nservice = \"s\"\n",
    );
    dir.write("c.yaml", "");
    dir.write("notes.txt", "not config");
    let file = FileProviderConfig {
        filename: None,
        directory: Some(dir.0.clone()),
        watch: true,
    };
    let (c, w) = load_dynamic(&file, &eps()).unwrap();
    assert_eq!(c.routers["r"].rule, "Path(`/a`)");
    assert_eq!(c.routers["r"].origin.file, dir.0.join("a.yml"));
    assert!(c.services.contains_key("s"));
    let w = warns(&w);
    assert_eq!(w.len(), 1, "{w:?}");
    let a = dir.0.join("a.yml").display().to_string();
    let b = dir.0.join("b/services.toml").display().to_string();
    assert!(
        w[0].starts_with(&format!(
            "{b}:3:15: r: router \"r\" is already defined in {a}:3:5"
        )),
        "{w:?}"
    );

    // Errors from several files are all reported.
    dir.write(
        "d.yml",
        "http:\n  routers:\n    x:\n      rule: Path(`/`)\n      service: nope\n",
    );
    dir.write("e.toml", "[http]\nfoo = 1\n");
    let e = errs(load_dynamic(&file, &eps()));
    assert_eq!(e.len(), 2, "{e:?}");
    assert_has(
        &e,
        "d.yml:5:16: http.routers.x.service: unknown service \"nope\"",
    );
    assert_has(&e, "e.toml:2:1: http.foo: unknown key \"foo\"");
}

#[test]
fn load_dynamic_single_file_and_bad_extension() {
    let dir = TempDir::new("single");
    let p = dir.write("dyn.toml", TOML);
    let file = FileProviderConfig {
        filename: Some(p),
        directory: None,
        watch: false,
    };
    let (c, _) = load_dynamic(&file, &eps()).unwrap();
    assert_eq!(c.routers.len(), 2);
    let p = dir.write("dyn.json", "{}");
    let file = FileProviderConfig {
        filename: Some(p),
        directory: None,
        watch: false,
    };
    assert_has(
        &errs(load_dynamic(&file, &eps())),
        "unsupported file extension (expected .yml, .yaml or .toml)",
    );
    let file = FileProviderConfig {
        filename: Some(dir.0.join("missing.yml")),
        directory: None,
        watch: false,
    };
    assert_has(&errs(load_dynamic(&file, &eps())), "cannot read file");
}

#[test]
fn load_static_from_disk() {
    let dir = TempDir::new("static");
    let p = dir.write(
        "traefik.yml",
        "entryPoints:\n  web:\n    address: 127.0.0.1:0\n",
    );
    let (c, _) = load_static(&p).unwrap();
    assert_eq!(c.entry_point_names(), vec!["web"]);
    let p = dir.write("traefik.yml", "entryPoints:\n  web:\n    adress: ':80'\n");
    let e = errs(load_static(&p));
    assert_eq!(
        e,
        vec![
            format!(
                "{}:2:3: entryPoints.web: entrypoint has no address",
                p.display()
            ),
            format!(
                "{}:3:5: entryPoints.web.adress: unknown key \"adress\" (did you mean \"address\"?)",
                p.display()
            ),
        ]
    );
}
