//! The CI recipe in `examples/` is a workflow a server's maintainers copy:
//! it must parse as YAML, have the shape GitHub Actions reads, keep its
//! reports whatever the verdict, and call the harness only with
//! subcommands and flags the binary accepts and the README documents.

use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

const RECIPE: &str = "examples/github-actions.yml";

fn recipe() -> Yaml {
    let text = std::fs::read_to_string(RECIPE).expect("the recipe is there");
    let mut docs = YamlLoader::load_from_str(&text).expect("the recipe is YAML");
    assert_eq!(docs.len(), 1, "one document");
    docs.remove(0)
}

fn steps(doc: &Yaml) -> Vec<Yaml> {
    let jobs = doc["jobs"].as_hash().expect("jobs is a map");
    assert!(!jobs.is_empty(), "at least one job");
    jobs.values()
        .flat_map(|job| {
            assert!(
                job["runs-on"].as_str().is_some(),
                "every job says where it runs"
            );
            job["steps"].as_vec().expect("a job has steps").clone()
        })
        .collect()
}

/// Every `ews-conformance …` invocation in the steps' scripts, with line
/// continuations joined.
fn invocations(steps: &[Yaml]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for step in steps {
        let Some(script) = step["run"].as_str() else {
            continue;
        };
        let joined = script.replace("\\\n", " ");
        for line in joined.lines() {
            let words: Vec<String> = line
                .split_whitespace()
                .map(|w| w.trim_matches('"').to_string())
                .collect();
            // `cargo install … ews-conformance` names the package, not a call.
            if words.first().is_some_and(|w| w == "cargo") {
                continue;
            }
            if let Some(at) = words.iter().position(|w| w == "ews-conformance") {
                found.push(words[at + 1..].to_vec());
            }
        }
    }
    found
}

#[test]
fn the_recipe_is_a_workflow_that_keeps_its_reports() {
    let doc = recipe();
    assert!(doc["name"].as_str().is_some());
    assert!(!doc["on"].is_badvalue(), "the workflow has triggers");
    let steps = steps(&doc);
    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .expect("the reports are uploaded");
    assert_eq!(
        upload["if"].as_str(),
        Some("always()"),
        "reports are kept when the gate fails"
    );
    let paths = upload["with"]["path"].as_str().expect("paths");
    for report in ["conformance.xml", "conformance.json", "conformance-html"] {
        assert!(paths.contains(report), "{report} is uploaded");
    }
    let installs = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .any(|r| r.contains("cargo install --locked --git"));
    assert!(
        installs,
        "the harness is installed with cargo install --git"
    );
}

#[test]
fn the_recipe_calls_only_documented_commands() {
    let readme = std::fs::read_to_string("README.md").expect("README");
    let calls = invocations(&steps(&recipe()));
    assert!(
        calls.iter().any(|c| c.first().is_some_and(|s| s == "run")),
        "the recipe runs the suite: {calls:?}"
    );
    for call in &calls {
        let sub = call.first().expect("a subcommand");
        let help = Command::new(env!("CARGO_BIN_EXE_ews-conformance"))
            .args([sub.as_str(), "--help"])
            .output()
            .expect("the binary runs");
        assert!(help.status.success(), "`{sub}` is a subcommand");
        let help = String::from_utf8_lossy(&help.stdout);
        assert!(
            readme.contains(&format!("ews-conformance {sub}"))
                || readme.contains(&format!("cargo run -- {sub}")),
            "README documents `{sub}`"
        );
        for flag in call
            .iter()
            .filter(|w| w.starts_with("--") && *w != "--help")
        {
            let flag = flag.split('=').next().unwrap_or(flag);
            assert!(help.contains(flag), "`{sub}` accepts {flag}");
            assert!(readme.contains(flag), "README documents {flag}");
        }
    }
    for install in ["cargo install --path .", "cargo install --locked --git"] {
        assert!(readme.contains(install), "README documents `{install}`");
    }
}
