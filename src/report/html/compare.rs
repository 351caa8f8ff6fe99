//! The comparison page: cases × targets, one verdict per cell, the cases
//! where the targets differ first.

use maud::html;

use super::page::{filters, page, shown};
use crate::report::compare::Comparison;

pub fn render(c: &Comparison) -> String {
    let differing = c.differences();
    let present = vec![
        ("differs".to_string(), differing),
        ("same".to_string(), c.rows.len() - differing),
    ];
    let tallies = c.tallies();
    let body = html! {
        h1 { "ews-conformance comparison" }
        p.meta { (c.rows.len()) " cases, " (c.columns.len()) " reports; " (differing) " cases differ" }
        table #targets {
            thead { tr { th { "#" } th { "target" } th { "report" } th { "verdicts" } } }
            tbody {
                @for (i, col) in c.columns.iter().enumerate() {
                    tr {
                        td { (i + 1) }
                        td { (shown(&col.heading())) }
                        td { code { (col.file.display()) } " (ews-conformance " (shown(&col.tool_version)) ")" }
                        td {
                            @for (k, (v, n)) in tallies[i].iter().enumerate() {
                                @if k > 0 { ", " }
                                span class={ "v-" (v) } { (n) " " (v) }
                            }
                        }
                    }
                }
            }
        }
        (filters(&present, "filter by case id or title"))
        table #matrix {
            thead {
                tr {
                    th { "case" }
                    @for (i, col) in c.columns.iter().enumerate() {
                        th title=(shown(&col.heading())) { "[" (i + 1) "] " (shown(&col.target)) }
                    }
                }
            }
            tbody {
                @for row in &c.rows {
                    @let state = if row.differs() { "differs" } else { "same" };
                    tr class=(state) data-verdict=(state)
                        data-search=(format!("{} {}", row.id, row.title).to_lowercase()) {
                        td { code { (row.id) } @if !row.title.is_empty() { br; span.meta { (shown(&row.title)) } } }
                        @for cell in &row.cells {
                            @match cell {
                                Some(cell) => td class={ "cell-" (cell.verdict) } title=[cell.why.as_deref().map(shown)] {
                                    span class={ "verdict v-" (cell.verdict) } { (shown(&cell.verdict)) }
                                },
                                None => td.cell-absent { span.v-absent { "absent" } },
                            }
                        }
                    }
                }
            }
        }
    };
    page("ews-conformance comparison", body)
}
