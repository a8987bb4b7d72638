//! Bounding text before it is shown, stored or sent on.
//!
//! Much of what the host handles was written by generated code: stdout and stderr, the
//! harness's error line, a submission's header and cells. None of it may reach a message, a
//! log, Redis or an LLM prompt at whatever size the code chose, and a cut must never split a
//! character (slicing a `String` at a byte index inside one panics). Every such cut in the crate
//! goes through these functions, and each says how much it dropped.

/// Characters of a failed attempt's error report fed back to the generator.
pub const ERROR_TAIL_CHARS: usize = 6_000;
/// Characters of one value quoted in a message (a header, an id, a cell).
pub const QUOTED_VALUE_CHARS: usize = 200;
/// Characters of one message built from a run's output (a validation error, a failure line).
pub const MESSAGE_CHARS: usize = 2_000;

/// `value` as a Rust string literal (quotes and escapes, so control characters stay visible),
/// its first [`QUOTED_VALUE_CHARS`] characters only, saying how many more there were.
pub fn quote(value: &str) -> String {
    let count = value.chars().count();
    if count <= QUOTED_VALUE_CHARS {
        return format!("{value:?}");
    }
    let end = value
        .char_indices()
        .nth(QUOTED_VALUE_CHARS)
        .map_or(value.len(), |(i, _)| i);
    format!(
        "{:?}... ({} more characters)",
        &value[..end],
        count - QUOTED_VALUE_CHARS
    )
}

/// A list of values quoted with [`quote`], at most `max` of them, saying how many more there
/// were: `["a", "b", ... and 3 more]`.
pub fn quote_list<'a>(values: impl IntoIterator<Item = &'a str>, max: usize) -> String {
    let mut shown = Vec::new();
    let mut more = 0usize;
    for value in values {
        if shown.len() < max {
            shown.push(quote(value));
        } else {
            more += 1;
        }
    }
    if more > 0 {
        shown.push(format!("... and {more} more"));
    }
    format!("[{}]", shown.join(", "))
}

/// The last `max` characters of `text`; when cut, a first line says how many were dropped.
pub fn tail(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let cut = count - max;
    let start = text.char_indices().nth(cut).map_or(text.len(), |(i, _)| i);
    format!("[... {cut} earlier characters cut ...]\n{}", &text[start..])
}

/// The first `max` characters of `text`; when cut, a last line says how many were dropped.
pub fn head(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => {
            let cut = text[end..].chars().count();
            format!("{}\n[... {cut} more characters cut ...]", &text[..end])
        }
        None => text.to_owned(),
    }
}

/// The first `max` characters of `text` on one line; when cut, ` [N more]` says how many were
/// dropped (for a table cell shown among others).
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{} [{} more]", &text[..end], text[end..].chars().count()),
        None => text.to_owned(),
    }
}

/// The longest suffix of `text` of at most `max` bytes that starts on a character boundary.
pub fn tail_bytes(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clipped_cell_says_how_much_was_cut_and_keeps_characters_whole() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("ééééé", 2), "éé [3 more]");
    }

    #[test]
    fn tail_keeps_the_end_and_counts_the_cut() {
        assert_eq!(tail("ab", 3), "ab");
        assert_eq!(tail("aébc", 2), "[... 2 earlier characters cut ...]\nbc");
        assert_eq!(tail("abc", 0), "[... 3 earlier characters cut ...]\n");
    }

    #[test]
    fn head_keeps_the_start_and_counts_the_cut() {
        assert_eq!(head("ab", 3), "ab");
        assert_eq!(head("éaéx", 2), "éa\n[... 2 more characters cut ...]");
    }

    #[test]
    fn quoted_values_are_escaped_and_bounded() {
        assert_eq!(quote("a\"b\n"), "\"a\\\"b\\n\"");
        let long = "x".repeat(QUOTED_VALUE_CHARS + 5);
        let quoted = quote(&long);
        assert!(quoted.ends_with("... (5 more characters)"), "{quoted}");
        assert!(quoted.len() < QUOTED_VALUE_CHARS + 40);
        assert_eq!(
            quote_list(["a", "b", "c"], 2),
            "[\"a\", \"b\", ... and 1 more]"
        );
        assert_eq!(quote_list(["a"], 2), "[\"a\"]");
    }

    #[test]
    fn tail_bytes_never_splits_a_character() {
        // 'é' is two bytes: a cut of 3 bytes from "aéé" would land inside the first 'é'.
        assert_eq!(tail_bytes("aéé", 3), "é");
        assert_eq!(tail_bytes("abc", 10), "abc");
        assert_eq!(tail_bytes("€", 2), "");
    }
}
