//! Splitting long text into numbered parts that each fit DingTalk's size limit once encoded.
//!
//! The parts are consecutive slices of the content (their concatenation is the content), cut
//! after a paragraph break (`\n\n`) if one is in the fitting window, else after a line break,
//! else between two characters; a part never ends with a markdown heading (it moves to the
//! next part, above its section). Whether a part fits is decided by the caller's `fits`, which
//! measures the real encoded message (JSON escaping and the `(i/n)` label included).
//!
//! `limit` bounds a part's raw bytes from above (its encoded size is never smaller): content
//! that could not fit in [`MAX_PARTS`] parts is refused by its size before anything is built,
//! and no candidate part is ever longer than the limit.

/// At most this many parts: beyond it a message is more a file than a chat message, and the
/// group robot's rate limit (20 a minute) would hold it back for minutes.
pub const MAX_PARTS: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitError {
    /// Even one character with its label does not fit (e.g. the subject alone is too long).
    CannotFit,
    /// The content would need more than [`MAX_PARTS`] parts.
    TooManyParts,
}

/// `label` is `None` for the content as one message, `Some((i, n))` for part i of n (1-based).
pub type Label = Option<(usize, usize)>;

fn digits(n: usize) -> usize {
    n.to_string().len()
}

/// Split `content` into slices of at most `limit` raw bytes such that `fits(slice, label)`
/// holds for each.
pub fn split_to_fit<'a, E>(
    content: &'a str,
    limit: usize,
    fits: &mut dyn FnMut(&str, Label) -> Result<bool, E>,
) -> Result<Result<Vec<&'a str>, SplitError>, E> {
    if content.len() > limit.saturating_mul(MAX_PARTS) {
        return Ok(Err(SplitError::TooManyParts));
    }
    if content.len() <= limit && fits(content, None)? {
        return Ok(Ok(vec![content]));
    }
    // The label's width depends on the part count, which depends on the label's width: plan
    // with a guessed count and redo only when the real count has more digits than the guess.
    let mut guess = 2;
    loop {
        let parts = match greedy(content, limit, guess, fits)? {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        if digits(parts.len()) <= digits(guess) {
            return Ok(Ok(parts));
        }
        guess = parts.len();
    }
}

fn greedy<'a, E>(
    content: &'a str,
    limit: usize,
    n: usize,
    fits: &mut dyn FnMut(&str, Label) -> Result<bool, E>,
) -> Result<Result<Vec<&'a str>, SplitError>, E> {
    let mut parts = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        if parts.len() == MAX_PARTS {
            return Ok(Err(SplitError::TooManyParts));
        }
        let label = Some((parts.len() + 1, n));
        if rest.len() <= limit && fits(rest, label)? {
            parts.push(rest);
            break;
        }
        // Ends of candidate slices, one per character up to the limit; the fitting ones form a
        // prefix of this list because a longer slice never encodes shorter.
        let ends: Vec<usize> = rest
            .char_indices()
            .map(|(i, c)| i + c.len_utf8())
            .take_while(|&end| end <= limit)
            .collect();
        let (mut lo, mut hi) = (0usize, ends.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if fits(&rest[..ends[mid]], label)? {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == 0 {
            return Ok(Err(SplitError::CannotFit));
        }
        let window = &rest[..ends[lo - 1]];
        let cut = not_after_heading(window, cut_point(window));
        parts.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    Ok(Ok(parts))
}

/// Where to end a part within `window` (the longest slice that fits): after the last paragraph
/// break, else the last line break, preferring ones in the second half so parts are not tiny.
fn cut_point(window: &str) -> usize {
    let half = window.len() / 2;
    let para = window.rfind("\n\n").map(|p| p + 2);
    let line = window.rfind('\n').map(|p| p + 1);
    [para, line]
        .into_iter()
        .flatten()
        .find(|&c| c >= half.max(1))
        .or(para)
        .or(line)
        .unwrap_or(window.len())
}

/// Move a cut that would end a part with a markdown heading to before that heading, so the
/// heading opens the next part with its section (unless it is all the part holds).
fn not_after_heading(window: &str, cut: usize) -> usize {
    let part = window[..cut].trim_end_matches(['\n', '\r', ' ']);
    let line_start = part.rfind('\n').map_or(0, |p| p + 1);
    let line = part[line_start..].trim_start_matches(' ');
    let is_heading = line.starts_with('#') && {
        let hashes = line.bytes().take_while(|&b| b == b'#').count();
        hashes <= 6 && matches!(line.as_bytes().get(hashes), Some(b' ' | b'\t') | None)
    };
    if is_heading && line_start > 0 {
        line_start
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    /// A text message's msgParam, as the app robot measures it.
    fn text_fits(limit: usize) -> impl FnMut(&str, Label) -> Result<bool, Infallible> {
        move |s, label| {
            let content = match label {
                Some((i, n)) => format!("({i}/{n}) {s}"),
                None => s.to_owned(),
            };
            Ok(serde_json::json!({ "content": content }).to_string().len() <= limit)
        }
    }

    fn split(content: &str, limit: usize) -> Vec<&str> {
        let mut fits = text_fits(limit);
        split_to_fit(content, limit, &mut fits).unwrap().unwrap()
    }

    fn check(content: &str, limit: usize) -> Vec<&str> {
        let parts = split(content, limit);
        assert_eq!(parts.concat(), content, "parts re-join to the content");
        let n = parts.len();
        let mut fits = text_fits(limit);
        for (i, p) in parts.iter().enumerate() {
            let label = (n > 1).then_some((i + 1, n));
            assert!(fits(p, label).unwrap(), "part {} of {n} fits", i + 1);
            assert!(!p.is_empty());
        }
        parts
    }

    #[test]
    fn short_content_is_one_part() {
        assert_eq!(check("hello", 100), vec!["hello"]);
    }

    #[test]
    fn ascii_splits_after_paragraph_breaks() {
        let para = "word ".repeat(20); // 100 bytes
        let content = format!("{para}\n\n{para}\n\n{para}");
        let parts = check(&content, 150);
        assert_eq!(parts.len(), 3);
        assert!(parts[0].ends_with("\n\n") && parts[1].ends_with("\n\n"));
    }

    #[test]
    fn without_paragraphs_it_splits_after_lines() {
        let line = "x".repeat(60);
        let content = format!("{line}\n{line}\n{line}\n{line}");
        let parts = check(&content, 150);
        assert!(parts.len() >= 2);
        assert!(parts[..parts.len() - 1].iter().all(|p| p.ends_with('\n')));
    }

    #[test]
    fn cjk_text_is_cut_between_characters_and_measured_in_bytes() {
        let content = "钉钉机器人消息".repeat(200); // 3 bytes a character, no breaks
        let parts = check(&content, 1000);
        assert!(parts.len() >= 5, "{} parts", parts.len());
    }

    #[test]
    fn escape_heavy_text_counts_the_escapes() {
        // 1000 raw bytes would fit a 1200-byte limit, but each `"` encodes as two bytes.
        let content = "\"".repeat(1000);
        assert_eq!(check(&content, 1200).len(), 2);
        // Control characters encode as six bytes (`\u0001`), `\` and `\t` as two.
        let content = "\u{1}\\\t".repeat(300);
        assert!(check(&content, 1000).len() >= 3);
    }

    #[test]
    fn labels_widen_when_parts_reach_two_digits() {
        let content = "a".repeat(1500);
        let parts = check(&content, 120);
        assert!(parts.len() >= 10, "{} parts", parts.len());
    }

    #[test]
    fn too_many_parts_is_an_error() {
        let content = "a".repeat(10_000);
        let mut fits = text_fits(100);
        assert_eq!(
            split_to_fit(&content, 100, &mut fits).unwrap(),
            Err(SplitError::TooManyParts)
        );
    }

    #[test]
    fn oversize_content_is_refused_by_its_size_before_anything_is_measured() {
        let content = "a".repeat(30 * 1024 * 1024);
        let mut calls = 0;
        let mut fits = |_: &str, _: Label| {
            calls += 1;
            Ok::<_, Infallible>(true)
        };
        assert_eq!(
            split_to_fit(&content, 15_000, &mut fits).unwrap(),
            Err(SplitError::TooManyParts)
        );
        assert_eq!(calls, 0);
    }

    #[test]
    fn no_candidate_part_is_longer_than_the_limit() {
        let content = "b".repeat(200_000);
        let mut longest = 0;
        let mut fits = |s: &str, _: Label| {
            longest = longest.max(s.len());
            Ok::<_, Infallible>(s.len() + 8 <= 15_000)
        };
        let parts = split_to_fit(&content, 15_000, &mut fits).unwrap().unwrap();
        assert_eq!(parts.concat(), content);
        assert!(longest <= 15_000, "{longest}");
    }

    #[test]
    fn a_heading_is_not_left_at_the_end_of_a_part() {
        let section = format!("## Section\n\n{}\n\n", "word ".repeat(18)); // ~104 bytes
        let content = section.repeat(6);
        let parts = check(&content, 170);
        assert!(parts.len() >= 2);
        for p in &parts {
            let last = p.trim_end().lines().last().unwrap();
            assert!(!last.starts_with('#'), "part ends with a heading: {p:?}");
        }
        assert!(
            parts[1..].iter().all(|p| p.starts_with("## Section")),
            "{parts:?}"
        );
    }

    #[test]
    fn nothing_fits_is_an_error() {
        let mut fits = |_: &str, _: Label| Ok::<_, Infallible>(false);
        assert_eq!(
            split_to_fit("abc", 100, &mut fits).unwrap(),
            Err(SplitError::CannotFit)
        );
    }
}
