//! The frame every page shares: its one style and one script, the Content
//! Security Policy that admits only those (by hash), the filter bar, and
//! how target text is shown.

use base64::Engine;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::{Digest, Sha256};

pub(super) const STYLE: &str = include_str!("page.css");
pub(super) const SCRIPT: &str = include_str!("page.js");

pub(super) fn csp_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The page around `body`: no network fetches, only our style and script.
pub(super) fn page(title: &str, body: Markup) -> String {
    let policy = format!(
        "default-src 'none'; style-src {}; script-src {}; img-src data:",
        csp_hash(STYLE),
        csp_hash(SCRIPT)
    );
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(policy);
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                (body)
                script { (PreEscaped(SCRIPT)) }
            }
        }
    };
    markup.into_string()
}

/// Target text fit for the page: control characters shown, not sent.
pub(super) fn shown(text: &str) -> String {
    crate::report::escape_controls(text).into_owned()
}

/// The filter bar: one checkbox per verdict present, a text search, and
/// the count of visible rows (`page.js` drives them).
pub(super) fn filters(verdicts: &[(String, usize)], placeholder: &str) -> Markup {
    html! {
        div #filters {
            @for (v, n) in verdicts {
                label class={ "filter v-" (v) } {
                    input type="checkbox" class="verdict-filter" value=(v) checked;
                    " " (v) " (" (n) ")"
                }
            }
            button type="button" #only-problems { "problems only" }
            button type="button" #show-all { "all" }
            input type="search" #search placeholder=(placeholder);
            span #shown {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_admits_exactly_the_pages_own_style_and_script() {
        let text = page("t", html! { p { "x" } });
        assert!(text.contains(&csp_hash(SCRIPT)));
        assert!(text.contains(&csp_hash(STYLE)));
        assert!(text.contains("default-src 'none'"));
        assert_eq!(text.matches("<script").count(), 1);
        // The hash is of the script exactly as embedded.
        assert!(text.contains(&format!("<script>{SCRIPT}</script>")));
    }
}
