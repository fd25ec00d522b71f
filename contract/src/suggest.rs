//! "Did you mean ...?": the nearest valid names to a misspelled one, for error messages.

/// The candidates nearest to `word`, best first: at most three, all at the same (smallest)
/// distance, and only when that distance is small for the word's length. A candidate that
/// starts with `word` (at least three characters of it) counts as near too: `dir` → `directory`.
/// Empty when nothing is near enough to be a plausible typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let lowered = word.to_lowercase();
    let limit = (word.chars().count() / 3).max(1);
    let mut best: Vec<&'a str> = Vec::new();
    let mut best_distance = usize::MAX;
    for candidate in candidates {
        if candidate == word {
            continue;
        }
        let other = candidate.to_lowercase();
        let distance = strsim::damerau_levenshtein(&lowered, &other);
        let prefix = lowered.chars().count() >= 3 && other.starts_with(&lowered);
        let score = if distance <= limit {
            distance
        } else if prefix {
            limit
        } else {
            continue;
        };
        if score < best_distance {
            best_distance = score;
            best.clear();
        }
        if score == best_distance && !best.contains(&candidate) {
            best.push(candidate);
        }
    }
    best.truncate(3);
    best
}

/// `; did you mean `a`?` (or `a` or `b`) for the nearest candidates, or "" when none is near.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let near = nearest(word, candidates);
    match near.as_slice() {
        [] => String::new(),
        [one] => format!("; did you mean `{one}`?"),
        [rest @ .., last] => {
            let rest: Vec<String> = rest.iter().map(|c| format!("`{c}`")).collect();
            format!("; did you mean {} or `{last}`?", rest.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transposition_or_a_missing_letter_is_near() {
        let args = ["path", "state", "content", "mode", "owner", "group"];
        assert_eq!(nearest("contnet", args), ["content"]);
        assert_eq!(nearest("pth", args), ["path"]);
        assert_eq!(nearest("Mode", args), ["mode"]);
        assert_eq!(nearest("fiel", ["command", "file", "wait"]), ["file"]);
    }

    #[test]
    fn a_prefix_is_near() {
        assert_eq!(nearest("dir", ["file", "directory", "absent"]), ["directory"]);
    }

    #[test]
    fn ties_are_all_named_in_candidate_order() {
        assert_eq!(nearest("web2", ["etcd0", "web0", "web1"]), ["web0", "web1"]);
        assert_eq!(did_you_mean("web2", ["etcd0", "web0", "web1"]), "; did you mean `web0` or `web1`?");
    }

    #[test]
    fn nothing_far_is_suggested() {
        assert!(nearest("banana", ["path", "state", "content"]).is_empty());
        assert!(nearest("x", ["path", "mode"]).is_empty());
        assert_eq!(did_you_mean("zzz", ["path"]), "");
    }

    #[test]
    fn the_word_itself_is_not_a_suggestion() {
        assert!(nearest("file", ["file"]).is_empty());
    }
}
