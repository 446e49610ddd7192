//! Text into HTML: escaping, and filling the page templates.
//!
//! Everything a page shows comes from the service (names, types, docs) or
//! from the operator (URLs), so every value is escaped before it reaches a
//! template; only fragments built here from escaped values go in raw.

/// `text` with the five characters that can end a text node or an
/// attribute value replaced by entities, so it renders as the same text in
/// element content and in double- or single-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `template` with every `{{name}}` replaced by its value in `values`,
/// in one pass: a value that happens to contain `{{...}}` is never read
/// as a marker. Values must already be HTML.
///
/// A marker without a value is left as it is; the tests render every
/// template and look for leftovers.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|v| v.1.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let value = after.find("}}").and_then(|end| {
            let name = &after[..end];
            values
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value, end + 2))
        });
        match value {
            Some((value, used)) => {
                out.push_str(value);
                rest = &after[used..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_become_entities() {
        assert_eq!(
            escape("<script>alert('x' & \"y\")</script>"),
            "&lt;script&gt;alert(&#39;x&#39; &amp; &quot;y&quot;)&lt;/script&gt;"
        );
        assert_eq!(escape("plain text, ünïcode ✓"), "plain text, ünïcode ✓");
        assert_eq!(escape(""), "");
        // Already-escaped text is escaped again: it is text, not markup.
        assert_eq!(escape("&lt;"), "&amp;lt;");
    }

    #[test]
    fn templates_fill_in_one_pass() {
        assert_eq!(
            fill("<p>{{a}} and {{b}}</p>", &[("a", "1"), ("b", "2")]),
            "<p>1 and 2</p>"
        );
        // A value that looks like a marker stays as it is.
        assert_eq!(fill("{{a}}{{b}}", &[("a", "{{b}}"), ("b", "x")]), "{{b}}x");
        // Unknown or unclosed markers are left for the tests to find.
        assert_eq!(fill("{{nope}} {{a", &[("a", "1")]), "{{nope}} {{a");
        // CSS braces are not markers.
        assert_eq!(fill("a { b: c }", &[]), "a { b: c }");
    }
}
