//! "Same shape, values ignored": comparing a real response with a
//! documented example. A shape keeps element names (namespace-aware),
//! attribute names and the order of children, and drops every value.
//!
//! Repeated sibling elements of the same name compare as one-or-more (an
//! example with two NewMailEvents matches a response with one or five), and
//! names the caller lists as optional may be present or absent on either
//! side (`m:MessageText`, `m:DescriptiveLinkKey`, or `@ChangeKey` for an
//! attribute).

use std::collections::BTreeSet;
use std::fmt;

use roxmltree::Node;

use ews_proto::xml::{display_name, element_children, ns};

/// Documents wider than this are compared position by position instead of
/// by a longest-common-subsequence alignment (bounded work).
const MAX_ALIGNMENT_CELLS: usize = 1_000_000;
const MAX_DEPTH: usize = 256;

/// An element's name, its attribute names, and its element children in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// `m:GetEventsResponse`, or `{uri}Local` for an unconventional namespace.
    pub name: String,
    /// Sorted qualified attribute names.
    pub attributes: Vec<String>,
    pub children: Vec<Shape>,
}

/// The shape of an element and everything below it (to [`MAX_DEPTH`] levels).
pub fn shape_of(node: Node<'_, '_>) -> Shape {
    shape_at(node, 0)
}

fn shape_at(node: Node<'_, '_>, depth: usize) -> Shape {
    let mut attributes: Vec<String> = node
        .attributes()
        .map(|a| match a.namespace() {
            None => a.name().to_string(),
            Some(uri) => match ns::prefix_of(uri) {
                Some(p) => format!("{p}:{}", a.name()),
                None => format!("{{{uri}}}{}", a.name()),
            },
        })
        .collect();
    attributes.sort();
    let children = if depth < MAX_DEPTH {
        element_children(node)
            .map(|c| shape_at(c, depth + 1))
            .collect()
    } else {
        Vec::new()
    };
    Shape {
        name: display_name(node),
        attributes,
        children,
    }
}

impl fmt::Display for Shape {
    /// An indented outline: `m:Notification`, `  t:ItemId @ChangeKey @Id`, …
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn write(s: &Shape, depth: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}{}", "  ".repeat(depth), s.name)?;
            for a in &s.attributes {
                write!(f, " @{a}")?;
            }
            writeln!(f)?;
            s.children.iter().try_for_each(|c| write(c, depth + 1, f))
        }
        write(self, 0, f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShapeDiffKind {
    /// In the expected shape, absent from the actual one.
    Missing,
    /// In the actual shape, not in the expected one.
    Extra,
    /// Present on both sides, at another position among its siblings.
    Reordered,
    MissingAttribute,
    ExtraAttribute,
}

/// One difference: where (the parent's path), what kind, which name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeDiff {
    pub path: String,
    pub kind: ShapeDiffKind,
    pub name: String,
}

impl fmt::Display for ShapeDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (p, n) = (&self.path, &self.name);
        match self.kind {
            ShapeDiffKind::Missing => write!(f, "{p}: {n} is missing"),
            ShapeDiffKind::Extra => write!(f, "{p}: unexpected {n}"),
            ShapeDiffKind::Reordered => write!(f, "{p}: {n} is out of order"),
            ShapeDiffKind::MissingAttribute => write!(f, "{p}: attribute {n} is missing"),
            ShapeDiffKind::ExtraAttribute => write!(f, "{p}: unexpected attribute {n}"),
        }
    }
}

/// Differences between an expected shape (a documented example) and an
/// actual one. `optional` lists element names (`m:MessageText`) and
/// attribute names (`@ChangeKey`) that either side may lack.
pub fn compare_shapes(expected: &Shape, actual: &Shape, optional: &[&str]) -> Vec<ShapeDiff> {
    let mut out = Vec::new();
    if expected.name != actual.name {
        for (kind, name) in [
            (ShapeDiffKind::Missing, &expected.name),
            (ShapeDiffKind::Extra, &actual.name),
        ] {
            out.push(ShapeDiff {
                path: "/".into(),
                kind,
                name: name.clone(),
            });
        }
        return out;
    }
    compare(
        expected,
        actual,
        &format!("/{}", expected.name),
        optional,
        &mut out,
    );
    out
}

fn compare(e: &Shape, a: &Shape, path: &str, optional: &[&str], out: &mut Vec<ShapeDiff>) {
    let is_optional_attr = |n: &str| optional.iter().any(|o| o.strip_prefix('@') == Some(n));
    let (ea, aa): (BTreeSet<&String>, BTreeSet<&String>) =
        (e.attributes.iter().collect(), a.attributes.iter().collect());
    for (set, other, kind) in [
        (&ea, &aa, ShapeDiffKind::MissingAttribute),
        (&aa, &ea, ShapeDiffKind::ExtraAttribute),
    ] {
        for name in set.difference(other).filter(|n| !is_optional_attr(n)) {
            out.push(ShapeDiff {
                path: path.to_string(),
                kind,
                name: (*name).clone(),
            });
        }
    }

    let is_optional = |n: &str| optional.contains(&n);
    // Optional elements are left out of the alignment; when both sides
    // have one, their insides are still compared.
    for name in optional {
        let first = |s: &Shape| s.children.iter().find(|c| c.name == *name).cloned();
        if let (Some(x), Some(y)) = (first(e), first(a)) {
            compare(&x, &y, &format!("{path}/{name}"), optional, out);
        }
    }
    let er = runs(&e.children, &is_optional);
    let ar = runs(&a.children, &is_optional);
    let pairs = align(&er, &ar);

    let mut e_matched = vec![false; er.len()];
    let mut a_matched = vec![false; ar.len()];
    let mut compared: Vec<(usize, usize)> = Vec::new();
    for &(i, j) in &pairs {
        e_matched[i] = true;
        a_matched[j] = true;
        compared.push((i, j));
    }
    for (i, run) in er.iter().enumerate().filter(|(i, _)| !e_matched[*i]) {
        let elsewhere = (0..ar.len()).find(|&j| !a_matched[j] && ar[j].0 == run.0);
        match elsewhere {
            Some(j) => {
                a_matched[j] = true;
                compared.push((i, j));
                out.push(ShapeDiff {
                    path: path.to_string(),
                    kind: ShapeDiffKind::Reordered,
                    name: run.0.to_string(),
                });
            }
            None => out.push(ShapeDiff {
                path: path.to_string(),
                kind: ShapeDiffKind::Missing,
                name: run.0.to_string(),
            }),
        }
    }
    for (_, run) in ar.iter().enumerate().filter(|(j, _)| !a_matched[*j]) {
        out.push(ShapeDiff {
            path: path.to_string(),
            kind: ShapeDiffKind::Extra,
            name: run.0.to_string(),
        });
    }
    for (i, j) in compared {
        let (ex, ac) = (&er[i].1, &ar[j].1);
        let child_path = format!("{path}/{}", er[i].0);
        for (k, actual) in ac.iter().enumerate() {
            let expected = ex[k.min(ex.len() - 1)];
            compare(expected, actual, &child_path, optional, out);
        }
    }
}

/// Consecutive same-named siblings grouped into one run (one-or-more).
fn runs<'s>(children: &'s [Shape], skip: &dyn Fn(&str) -> bool) -> Vec<(&'s str, Vec<&'s Shape>)> {
    let mut out: Vec<(&str, Vec<&Shape>)> = Vec::new();
    for c in children.iter().filter(|c| !skip(&c.name)) {
        match out.last_mut() {
            Some((name, group)) if *name == c.name => group.push(c),
            _ => out.push((c.name.as_str(), vec![c])),
        }
    }
    out
}

/// Index pairs of the runs both sides have, in order (a longest common
/// subsequence of run names).
fn align(e: &[(&str, Vec<&Shape>)], a: &[(&str, Vec<&Shape>)]) -> Vec<(usize, usize)> {
    let (n, m) = (e.len(), a.len());
    if n.saturating_mul(m) > MAX_ALIGNMENT_CELLS {
        return (0..n.min(m))
            .filter(|&i| e[i].0 == a[i].0)
            .map(|i| (i, i))
            .collect();
    }
    let en: Vec<&str> = e.iter().map(|r| r.0).collect();
    let an: Vec<&str> = a.iter().map(|r| r.0).collect();
    similar::capture_diff_slices(similar::Algorithm::Lcs, &en, &an)
        .iter()
        .filter_map(|op| match *op {
            similar::DiffOp::Equal {
                old_index,
                new_index,
                len,
            } => Some((0..len).map(move |k| (old_index + k, new_index + k))),
            _ => None,
        })
        .flatten()
        .collect()
}
