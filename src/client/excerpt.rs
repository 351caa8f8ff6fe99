//! Short excerpts of bodies, for evidence in findings and errors.

/// The first `max` characters of a body, for evidence.
pub fn excerpt(text: &str, max: usize) -> String {
    let trimmed = text.trim();
    if trimmed.chars().count() <= max {
        trimmed.to_string()
    } else {
        let cut: String = trimmed.chars().take(max).collect();
        format!("{cut}… ({} bytes in all)", trimmed.len())
    }
}
