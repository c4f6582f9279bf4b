//! "did you mean ...?" for near-miss keys and names, in manifests and control requests.

/// The candidate closest to `word`, if one is close enough to be a likely typo: the same once
/// case and `_`/`-` are ignored, or within an edit distance of 2 (1 for words of up to 4
/// characters, where 2 edits would make almost anything match).
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    // Input can be hostile (control requests): a long word is never a near-miss of a name.
    if word.chars().count() > 64 {
        return None;
    }
    let norm = normalize(word);
    if let Some(c) = candidates.iter().find(|c| normalize(c) == norm) {
        return Some(c);
    }
    let limit = if word.chars().count() <= 4 { 1 } else { 2 };
    candidates
        .iter()
        .map(|c| (distance(&norm, &normalize(c)), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `; did you mean "x"?` or nothing, ready to append to a message.
pub(crate) fn hint(word: &str, candidates: &[&str]) -> String {
    closest(word, candidates)
        .map(|c| format!("; did you mean {c:?}?"))
        .unwrap_or_default()
}

fn normalize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '_' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// Optimal string alignment distance: Levenshtein plus adjacent transpositions, since swapped
/// letters (`pool-lmiit`) are the commonest typo. Inputs longer than 64 characters are never
/// near-misses of a key, and are cut off to keep the cost bounded on hostile input.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let width = b.len() + 1;
    // Three rows are enough for transpositions: the one two back, the previous, the current.
    let mut before: Vec<usize> = vec![0; width];
    let mut prev: Vec<usize> = (0..width).collect();
    let mut cur: Vec<usize> = vec![0; width];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..width {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[width - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("pool-limit", "pool-limt"), 1);
        assert_eq!(distance("pool-limit", "pool-lmiit"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions() {
        let keys = ["pool-limit", "pool-min", "queue-limit", "type"];
        assert_eq!(closest("pool_limit", &keys), Some("pool-limit"));
        assert_eq!(closest("Pool-Limit", &keys), Some("pool-limit"));
        assert_eq!(closest("pool-limt", &keys), Some("pool-limit"));
        assert_eq!(closest("queue-lmit", &keys), Some("queue-limit"));
        assert_eq!(closest("typ", &keys), Some("type"));
        assert_eq!(closest("tip", &keys), None);
        assert_eq!(closest("backend", &keys), None);
        assert_eq!(hint("nothing-like-it", &keys), "");
    }
}
