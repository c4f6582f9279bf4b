//! "did you mean ...?" for near-miss actions and keys. `crate::manifest`'s helper is private
//! to that module, so this is a small copy of the same rule.

/// `; did you mean "x"?` when a candidate is the same as `word` once case and `_`/`-` are
/// ignored, or within an edit distance of 2 (1 for words of up to 4 characters); else nothing.
pub(crate) fn hint(word: &str, candidates: &[&str]) -> String {
    closest(word, candidates)
        .map(|c| format!("; did you mean {c:?}?"))
        .unwrap_or_default()
}

fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    // Input is hostile: longer words are never near-misses of a key and are not compared.
    if word.chars().count() > 64 {
        return None;
    }
    let norm = normalize(word);
    if let Some(c) = candidates.iter().find(|c| normalize(c) == norm) {
        return Some(c);
    }
    let limit = if norm.len() <= 4 { 1 } else { 2 };
    candidates
        .iter()
        .map(|c| (distance(&norm, &normalize(c)), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn normalize(s: &str) -> Vec<char> {
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

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
fn distance(a: &[char], b: &[char]) -> usize {
    let width = b.len() + 1;
    let mut before = vec![0; width];
    let mut prev: Vec<usize> = (0..width).collect();
    let mut cur = vec![0; width];
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
    use super::hint;

    #[test]
    fn hints() {
        let actions = ["deploy", "delete", "list", "keys"];
        assert_eq!(hint("delte", &actions), "; did you mean \"delete\"?");
        assert_eq!(hint("DEPLOY", &actions), "; did you mean \"deploy\"?");
        assert_eq!(hint("lsit", &actions), "; did you mean \"list\"?");
        assert_eq!(hint("frobnicate", &actions), "");
        assert_eq!(hint(&"x".repeat(100), &actions), "");
    }
}
