//! `xsd` (cargo feature `xsd`): every response document of every step
//! against the target's own schema files, with [`super::xsd::XsdValidator`].
//!
//! The check is registered only when the settings ask for it: `EWS_XSD_DIR`
//! names a folder holding `messages.xsd` and `types.xsd`, or
//! `EWS_XSD_FETCH=1` fetches them from the target's `/EWS/` path. The
//! schema declares `t:Notification` inside `m:Notifications`, while
//! Exchange sends `m:Notification` (digest 0.3): libxml2's complaint about
//! that element is reported as a note, like the grammar does.

use super::finding::Finding;
use super::finding::call_label;
use super::input::StepInput;
use super::kind::Check;
use super::wire::{documents, received};
use super::xsd::{XsdFinding, XsdValidator};

pub struct XsdCheck {
    validator: XsdValidator,
    /// Where the schema came from, for messages.
    source: String,
}

const NAME: &str = "xsd";

/// Findings kept per document.
const MAX_PER_DOCUMENT: usize = 10;

impl XsdCheck {
    pub fn new(validator: XsdValidator, source: impl Into<String>) -> Self {
        XsdCheck {
            validator,
            source: source.into(),
        }
    }
}

/// Whether libxml2's finding is the documented `m:Notification` conflict.
fn is_wire_notification(f: &XsdFinding, document: &str) -> bool {
    f.message
        .contains("{http://schemas.microsoft.com/exchange/services/2006/messages}Notification'")
        && document.contains("Notifications")
}

impl Check for XsdCheck {
    fn name(&self) -> &'static str {
        NAME
    }

    fn check(&self, input: &StepInput<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let total = input.exchanges.len();
        for (i, ex) in input.exchanges.iter().enumerate() {
            if !matches!(received(ex), Some(200 | 500)) || ex.response_text.trim().is_empty() {
                continue;
            }
            let call = call_label(i, total);
            for doc in documents(&ex.response_text) {
                let found = self.validator.validate(&doc);
                let shown = found.len().min(MAX_PER_DOCUMENT);
                for f in found.iter().take(shown) {
                    let text = format!(
                        "step \"{}\"{call}: against {}: {f}",
                        input.step.name, self.source
                    );
                    let mut finding = if is_wire_notification(f, &doc) {
                        input.note(
                            NAME,
                            format!("{text} (m:Notification is what Exchange sends; accepted)"),
                        )
                    } else {
                        input.fail(NAME, text)
                    };
                    finding.exchange = Some(i);
                    out.push(finding);
                }
                if found.len() > shown {
                    let mut f = input.fail(
                        NAME,
                        format!(
                            "step \"{}\"{call}: … and {} more schema findings",
                            input.step.name,
                            found.len() - shown
                        ),
                    );
                    f.exchange = Some(i);
                    out.push(f);
                }
            }
        }
        out
    }
}
