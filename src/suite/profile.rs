//! Server profiles (`cases/profiles/<name>.toml`): what a family of servers
//! is expected to do where the protocol lets servers differ, and the
//! baseline of known failures a CI gate tolerates.
//!
//! ```toml
//! title = "Exchange 2013, 2016, 2019 and Exchange Online"
//!
//! [[expected_failure]]
//! case = "getevents/batching-boundary-51"
//! reason = "MoreEvents does not look ahead (tracked as ISSUE-12)"
//!
//! [[skip]]
//! case = "subscribe/all-folders"
//! reason = "the test mailbox has search folders that flood the subscription"
//! ```
//!
//! Version-dependent expectations are cases restricted to profiles
//! (`profiles = ["exchange2010"]` on the 2010 soft-delete case, `["reference",
//! "exchange2013-and-online"]` on the 2013+ one). The baseline: a listed case
//! that fails is reported as an *expected failure* (not a CI failure); a
//! listed case that passes is an *unexpected pass* (a CI failure, so the
//! baseline is updated); an unlisted failure fails. `EWS_PROFILE` selects
//! the profile; the embedded target uses `reference`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::target::TargetConfig;

/// A case listed by a profile, with why.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listed {
    pub case: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, rename = "expected_failure")]
    expected_failures: Vec<Listed>,
    #[serde(default, rename = "skip")]
    skips: Vec<Listed>,
}

/// A loaded profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The file name without extension (`reference`).
    pub name: String,
    pub title: String,
    pub description: Option<String>,
    pub expected_failures: Vec<Listed>,
    pub skips: Vec<Listed>,
}

/// A profile that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("profile `{name}`: cannot read {}: {problem} (profiles live in <cases>/profiles/<name>.toml)", file.display())]
    Read {
        name: String,
        file: PathBuf,
        problem: String,
    },
    #[error("{}: {problem}", file.display())]
    Invalid { file: PathBuf, problem: String },
}

impl Profile {
    /// `<cases>/profiles/<name>.toml`.
    pub fn file(cases_dir: &Path, name: &str) -> PathBuf {
        cases_dir.join("profiles").join(format!("{name}.toml"))
    }

    pub fn load(cases_dir: &Path, name: &str) -> Result<Profile, ProfileError> {
        let file = Self::file(cases_dir, name);
        if name.is_empty() || name.contains(['/', '\\', '.']) {
            return Err(ProfileError::Read {
                name: name.to_string(),
                file,
                problem: "not a profile name".into(),
            });
        }
        let text = std::fs::read_to_string(&file).map_err(|e| ProfileError::Read {
            name: name.to_string(),
            file: file.clone(),
            problem: e.to_string(),
        })?;
        Self::parse(&text, &file, name)
    }

    pub fn parse(text: &str, file: &Path, name: &str) -> Result<Profile, ProfileError> {
        let invalid = |problem: String| ProfileError::Invalid {
            file: file.to_path_buf(),
            problem,
        };
        let raw: RawProfile = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    format!(
                        "line {}: ",
                        text[..s.start.min(text.len())].matches('\n').count() + 1
                    )
                })
                .unwrap_or_default();
            invalid(format!("{at}{}", e.message().trim()))
        })?;
        for (kind, list) in [
            ("expected_failure", &raw.expected_failures),
            ("skip", &raw.skips),
        ] {
            for l in list {
                if l.case.trim().is_empty() || l.reason.trim().is_empty() {
                    return Err(invalid(format!(
                        "every [[{kind}]] names a case and a reason"
                    )));
                }
            }
            let mut ids: Vec<&str> = list.iter().map(|l| l.case.as_str()).collect();
            ids.sort_unstable();
            if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
                return Err(invalid(format!("[[{kind}]] lists `{}` twice", w[0])));
            }
        }
        Ok(Profile {
            name: name.to_string(),
            title: raw.title,
            description: raw.description,
            expected_failures: raw.expected_failures,
            skips: raw.skips,
        })
    }

    /// The profile the target names, loaded from the case folder; `None`
    /// when the target names none, or when the case folder has no file for
    /// it (a private case folder without profiles: the name still selects
    /// the cases restricted to it, there is just no baseline).
    pub fn for_target(
        cases_dir: &Path,
        target: &TargetConfig,
    ) -> Result<Option<Profile>, ProfileError> {
        let Some(name) = target.profile.as_deref() else {
            return Ok(None);
        };
        if !Self::file(cases_dir, name).exists() && !name.contains(['/', '\\', '.']) {
            tracing::info!(
                profile = name,
                "no profile file in the case folder; no baseline applies"
            );
            return Ok(None);
        }
        Self::load(cases_dir, name).map(Some)
    }

    /// Why this profile expects `case_id` to fail, if it does.
    pub fn expected_failure(&self, case_id: &str) -> Option<&str> {
        self.expected_failures
            .iter()
            .find(|l| l.case == case_id)
            .map(|l| l.reason.as_str())
    }

    /// Why this profile skips `case_id`, if it does.
    pub fn skip(&self, case_id: &str) -> Option<&str> {
        self.skips
            .iter()
            .find(|l| l.case == case_id)
            .map(|l| l.reason.as_str())
    }

    /// Listed case ids that are not among `known` (a stale baseline).
    pub fn unknown_cases<'a>(&'a self, known: &[&str]) -> Vec<&'a str> {
        self.expected_failures
            .iter()
            .chain(self.skips.iter())
            .map(|l| l.case.as_str())
            .filter(|c| !known.contains(c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_refuses_mistakes() {
        let p = Profile::parse(
            r#"
title = "t"
[[expected_failure]]
case = "a/b"
reason = "known"
[[skip]]
case = "c/d"
reason = "no"
"#,
            Path::new("x.toml"),
            "x",
        )
        .expect("valid");
        assert_eq!(p.expected_failure("a/b"), Some("known"));
        assert_eq!(p.expected_failure("c/d"), None);
        assert_eq!(p.skip("c/d"), Some("no"));
        assert_eq!(p.unknown_cases(&["a/b"]), ["c/d"]);

        let twice = "title = \"t\"\n[[skip]]\ncase = \"a\"\nreason = \"r\"\n[[skip]]\ncase = \"a\"\nreason = \"r\"\n";
        let e = Profile::parse(twice, Path::new("x.toml"), "x").expect_err("duplicate");
        assert!(e.to_string().contains("lists `a` twice"), "{e}");
        let e = Profile::parse("title = \"t\"\nbogus = 1\n", Path::new("x.toml"), "x")
            .expect_err("unknown key");
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = Profile::load(Path::new("cases"), "../etc").expect_err("not a name");
        assert!(e.to_string().contains("not a profile name"), "{e}");
    }
}
