//! `--table`: a JSON answer as aligned columns for a terminal. Arrays of objects become rows,
//! an object becomes field/value pairs. Cells never carry terminal control sequences (a
//! description may hold anything: `ESC[2J` is shown as `\u{1b}[2J`, not run), long cells wrap
//! at spaces instead of being cut mid-word, and widths count what a terminal shows (a CJK
//! character takes two columns).

use serde_json::Value;
use unicode_width::UnicodeWidthChar;

/// The widest a column grows before its cells wrap.
const MAX_COLUMN: usize = 48;

/// Columns shown for lists, in this order, when the rows have them.
const PREFERRED: [&str; 12] = [
    "name",
    "kind",
    "title",
    "app_key",
    "robot_code",
    "description",
    "id",
    "flow",
    "version",
    "trigger",
    "status",
    "hook_path",
];

pub fn render(v: &Value) -> String {
    let (header, rows): (Vec<String>, Vec<Vec<String>>) = match v {
        Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
            let first = items[0].as_object().expect("checked: an object");
            let mut header: Vec<String> = PREFERRED
                .iter()
                .filter(|k| first.contains_key(**k))
                .map(|k| k.to_string())
                .collect();
            if header.is_empty() {
                header = first.keys().cloned().collect();
            }
            let rows = items
                .iter()
                .map(|i| header.iter().map(|h| cell(&i[h.as_str()])).collect())
                .collect();
            (header, rows)
        }
        Value::Object(map) => (
            vec!["field".into(), "value".into()],
            map.iter().map(|(k, v)| vec![escape(k), cell(v)]).collect(),
        ),
        other => return cell(other),
    };
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| width(&r[c]))
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
                .min(MAX_COLUMN)
        })
        .collect();
    let mut out = vec![line(
        &header
            .iter()
            .map(|h| vec![h.to_uppercase()])
            .collect::<Vec<_>>(),
        &widths,
    )];
    for row in &rows {
        let wrapped: Vec<Vec<String>> = row.iter().zip(&widths).map(|(c, w)| wrap(c, *w)).collect();
        out.push(line(&wrapped, &widths));
    }
    out.join("\n")
}

/// One row: each cell's lines side by side, as many lines as its tallest cell.
fn line(cells: &[Vec<String>], widths: &[usize]) -> String {
    let height = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
    (0..height)
        .map(|i| {
            cells
                .iter()
                .zip(widths)
                .map(|(lines, w)| {
                    let text = lines.get(i).map_or("", String::as_str);
                    format!("{text}{}", " ".repeat(w.saturating_sub(width(text))))
                })
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => escape(s),
        Value::Null => String::new(),
        other => escape(&other.to_string()),
    }
}

/// Control characters and bidirectional overrides as visible escapes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control()
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push_str(&c.escape_unicode().to_string())
            }
            c => out.push(c),
        }
    }
    out
}

fn width(s: &str) -> usize {
    s.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// `s` in lines of at most `max` columns, broken at spaces; a word longer than a line is
/// broken where it must be.
fn wrap(s: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in s.split(' ') {
        let needed = if current.is_empty() {
            width(word)
        } else {
            width(&current) + 1 + width(word)
        };
        if needed <= max {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(word);
            continue;
        }
        if !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        // The word alone: split it if it is longer than a line.
        for c in word.chars() {
            if width(&current) + c.width().unwrap_or(0) > max {
                lines.push(std::mem::take(&mut current));
            }
            current.push(c);
        }
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn terminal_escapes_are_shown_not_run() {
        let out =
            render(&json!([{"name": "a", "description": "\u{1b}[2J\u{1b}]0;pwned\u{7}x\u{202e}"}]));
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
        assert!(out.contains("\\u{1b}[2J"), "{out}");
        assert!(out.contains("\\u{202e}"), "{out}");
    }

    #[test]
    fn long_cells_wrap_at_spaces() {
        let description = "Alerts from the production Kubernetes clusters in Hangzhou and Beijing";
        let out = render(&json!([{"name": "ops", "description": description}]));
        let words: Vec<&str> = out
            .lines()
            .skip(1)
            .flat_map(|l| l.split_whitespace())
            .filter(|w| *w != "ops")
            .collect();
        assert_eq!(words.join(" "), description, "{out}");
        assert!(out.lines().all(|l| width(l) <= 4 + 2 + MAX_COLUMN), "{out}");
    }

    #[test]
    fn wide_characters_take_two_columns() {
        let out = render(
            &json!([{"name": "告警机器人", "kind": "app_robot"}, {"name": "ops", "kind": "webhook_robot"}]),
        );
        let lines: Vec<&str> = out.lines().collect();
        let column = |l: &str, kind: &str| width(&l[..l.find(kind).unwrap()]);
        assert_eq!(
            column(lines[1], "app_robot"),
            column(lines[2], "webhook_robot"),
            "{out}"
        );
    }

    #[test]
    fn a_word_longer_than_a_line_is_broken() {
        assert_eq!(wrap("abcdef", 4), vec!["abcd", "ef"]);
        assert_eq!(wrap("", 4), vec![""]);
        assert_eq!(wrap("ab cd ef", 5), vec!["ab cd", "ef"]);
    }
}
