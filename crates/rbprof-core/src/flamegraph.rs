//! Flame graphs as SVG, drawn by the `inferno` crate from folded stacks.
//!
//! ```
//! let lines = ["<main> - /app/main.rb;Object#alpha - /app/work.rb 9"];
//! let svg = rbprof_core::flamegraph::render_flamegraph(&lines, "Process 42").unwrap();
//! assert!(svg.contains("Object#alpha"));
//! ```

use inferno::flamegraph::{self, Options, TextTruncateDirection};

use crate::{Error, Result};

/// Renders folded stacks, one `frame;frame;frame count` line each, as an
/// interactive SVG flame graph with a search button and a title.
///
/// Colors are derived from a hash of each frame's name, so the same input
/// always gives the same SVG. Frame text that does not fit its box is cut
/// on the right, because frames read `name - path` and the name matters
/// most. Empty input gives an SVG with a note that there are no samples.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for a line without a stack or without a
/// count at its end. inferno would skip such lines with only a log
/// message, and the graph would quietly miss samples.
pub fn render_flamegraph<S: AsRef<str>>(lines: &[S], title: &str) -> Result<String> {
    for (index, line) in lines.iter().enumerate() {
        check_folded_line(line.as_ref()).map_err(|reason| {
            Error::InvalidArgument(format!("folded line {}: {reason}", index + 1))
        })?;
    }
    if lines.is_empty() {
        return Ok(empty_svg(title));
    }

    let mut options = Options::default();
    options.title = title.to_string();
    options.hash = true;
    options.text_truncate_direction = TextTruncateDirection::Right;
    let mut svg = Vec::new();
    flamegraph::from_lines(&mut options, lines.iter().map(AsRef::as_ref), &mut svg).map_err(
        |source| Error::Io {
            context: "failed to render the flame graph".into(),
            source,
        },
    )?;
    String::from_utf8(svg).map_err(|error| Error::Io {
        context: "the flame graph is not UTF-8".into(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, error),
    })
}

/// Checks that a line is a non-empty stack, a space and a whole number.
fn check_folded_line(line: &str) -> std::result::Result<(), String> {
    let Some((stack, count)) = line.trim().rsplit_once(' ') else {
        return Err(format!(
            "{line:?} has no count; expected `frame;frame count`"
        ));
    };
    if count.is_empty() || !count.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(format!("{line:?} does not end in a sample count"));
    }
    if stack.trim().is_empty() {
        return Err(format!("{line:?} has no frames"));
    }
    // inferno skips lines that start with "# " as comments.
    if stack.starts_with("# ") {
        return Err(format!("{line:?} starts like a comment"));
    }
    Ok(())
}

/// Returns a small SVG with the title and a note in place of a flame graph,
/// which inferno cannot draw without samples.
fn empty_svg(title: &str) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" standalone="no"?>"#,
            "\n",
            r#"<svg version="1.1" width="1200" height="80" viewBox="0 0 1200 80" "#,
            r#"xmlns="http://www.w3.org/2000/svg">"#,
            r#"<text x="600" y="24" text-anchor="middle" font-family="monospace" "#,
            r#"font-size="17">{}</text>"#,
            r#"<text x="600" y="56" text-anchor="middle" font-family="monospace" "#,
            r#"font-size="12">No samples in this profile.</text></svg>"#,
            "\n",
        ),
        escape_xml(title)
    )
}

fn escape_xml(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINES: [&str; 3] = [
        "<main> - /app/main.rb;Object#alpha - /app/work.rb 9",
        "<main> - /app/main.rb;Object#beta - /app/work.rb 3",
        "block in Worker#run - /app/worker.rb;Object#alpha - /app/work.rb 2",
    ];

    #[test]
    fn svg_has_frames_search_and_total() {
        let svg = render_flamegraph(&LINES, "Process 42").unwrap();
        assert!(svg.starts_with("<?xml"));
        assert!(svg.contains("&lt;main&gt; - /app/main.rb"));
        assert!(svg.contains("block in Worker#run - /app/worker.rb"));
        assert!(svg.contains(r#"id="search""#));
        assert!(svg.contains("Process 42"));
        // The root frame covers every sample: 9 + 3 + 2.
        assert!(svg.contains("all (14 samples, 100%)"), "{svg}");
    }

    #[test]
    fn same_input_gives_same_svg() {
        let first = render_flamegraph(&LINES, "t").unwrap();
        let second = render_flamegraph(&LINES, "t").unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn title_is_escaped() {
        let svg = render_flamegraph(&LINES, "a <b> & c").unwrap();
        assert!(svg.contains("a &lt;b&gt; &amp; c"));
        let empty = render_flamegraph::<&str>(&[], "a <b> & c").unwrap();
        assert!(empty.contains("a &lt;b&gt; &amp; c"));
        assert!(empty.contains("No samples"));
    }

    #[test]
    fn invalid_lines_are_rejected() {
        for line in ["main;foo", "main;foo x", " 3", "# main 3", "main;foo 1.5"] {
            let error = render_flamegraph(&[line], "t").unwrap_err();
            assert!(
                matches!(error, Error::InvalidArgument(ref message) if message.starts_with("folded line 1:")),
                "{line:?}: {error}"
            );
        }
    }
}
