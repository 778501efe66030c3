//! IAM wildcards: `*` (any run of characters, including none and including `/` and `:`) and
//! `?` (exactly one character). IAM has no escape for either.

/// Whether `text` matches `pattern`. Actions compare case-insensitively, ARNs and condition
/// strings case-sensitively, so the caller chooses.
pub(crate) fn matches(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let p: Vec<char> = fold(pattern, ignore_case);
    let t: Vec<char> = fold(text, ignore_case);
    // Greedy matching with one backtrack point (the last `*`): linear for IAM's patterns,
    // which never nest.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn fold(s: &str, ignore_case: bool) -> Vec<char> {
    if ignore_case {
        s.chars().flat_map(char::to_lowercase).collect()
    } else {
        s.chars().collect()
    }
}

/// Whether some string matches both patterns. Used when the request names a set of
/// resources (a secret given by name, whose ARN ends in a random suffix) rather than one.
pub(crate) fn intersects(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Breadth-first search over the product of the two patterns' positions: a state is
    // accepting when both patterns are consumed.
    let mut seen = vec![vec![false; b.len() + 1]; a.len() + 1];
    let mut todo = vec![(0usize, 0usize)];
    while let Some((i, j)) = todo.pop() {
        if seen[i][j] {
            continue;
        }
        seen[i][j] = true;
        if i == a.len() && j == b.len() {
            return true;
        }
        todo.extend(successors(&a, &b, i, j));
    }
    false
}

/// Moves from positions (i, j): a `*` may match nothing, or both patterns consume one shared
/// character (a `*` staying put, a `?` or an equal literal advancing).
fn successors(a: &[char], b: &[char], i: usize, j: usize) -> Vec<(usize, usize)> {
    let mut next = Vec::new();
    if a.get(i) == Some(&'*') {
        next.push((i + 1, j));
    }
    if b.get(j) == Some(&'*') {
        next.push((i, j + 1));
    }
    let steps = |p: &[char], k: usize| -> Vec<(usize, Option<char>)> {
        match p.get(k) {
            Some('*') => vec![(k, None)],
            Some('?') => vec![(k + 1, None)],
            Some(&c) => vec![(k + 1, Some(c))],
            None => vec![],
        }
    };
    for (ni, ca) in steps(a, i) {
        for (nj, cb) in steps(b, j) {
            let compatible = match (ca, cb) {
                (Some(x), Some(y)) => x == y,
                _ => true,
            };
            // Both staying on a `*` consumes a character without progress: skip the loop.
            if compatible && (ni, nj) != (i, j) {
                next.push((ni, nj));
            }
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_and_question_mark() {
        assert!(matches("s3:*", "s3:GetObject", false));
        assert!(matches("S3:get*", "s3:GetObject", true));
        assert!(!matches("S3:get*", "s3:GetObject", false));
        assert!(matches(
            "arn:aws:s3:::b/raw/*",
            "arn:aws:s3:::b/raw/x/y.csv",
            false
        ));
        assert!(!matches(
            "arn:aws:s3:::b/raw/*",
            "arn:aws:s3:::b/curated/x",
            false
        ));
        assert!(matches("a?c", "abc", false));
        assert!(!matches("a?c", "ac", false));
        assert!(matches("*", "", false));
        assert!(matches("a*b*c", "aXbYbZc", false));
        assert!(!matches("a*b*c", "aXbYbZ", false));
    }

    #[test]
    fn pattern_intersection() {
        assert!(intersects("secret:db-*", "secret:db-AbCdEf"));
        assert!(intersects("secret:db-*", "secret:*"));
        assert!(!intersects("secret:db-*", "secret:es-AbCdEf"));
        assert!(intersects("a?c", "*c"));
        assert!(!intersects("a?c", "abd"));
    }
}
