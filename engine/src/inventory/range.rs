//! Ansible's host ranges: `web[01:10].example.com`, `db-[a:f]`, `node[1:10:2]`, as its
//! `expand_hostname_range` reads them (a leading zero fixes the width; letters go one by one).

/// At most this many names from one pattern, so a typo like `[1:99999999]` cannot fill memory.
pub(super) const MAX_HOSTS: usize = 100_000;

/// The names `pattern` stands for, in order; the pattern itself when it holds no `[`.
pub(super) fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    expand_into(pattern, pattern, &mut out)?;
    Ok(out)
}

fn expand_into(whole: &str, pattern: &str, out: &mut Vec<String>) -> Result<(), String> {
    let Some(open) = pattern.find('[') else {
        if pattern.contains(']') {
            return Err(format!("host range {whole:?} has a `]` without its `[`"));
        }
        push(whole, out, pattern.to_owned())?;
        return Ok(());
    };
    let (head, rest) = pattern.split_at(open);
    let Some(close) = rest.find(']') else {
        return Err(format!("host range {whole:?} has a `[` without its `]`"));
    };
    let body = &rest[1..close];
    let tail = &rest[close + 1..];
    let parts: Vec<&str> = body.split(':').collect();
    let (begin, end, step) = match parts.as_slice() {
        [b, e] => (*b, *e, 1),
        [b, e, s] => {
            let step = s.parse::<usize>().ok().filter(|s| *s > 0).ok_or_else(|| {
                format!("host range {whole:?}: the step {s:?} is not a positive whole number")
            })?;
            (*b, *e, step)
        }
        _ => {
            return Err(format!(
                "host range {whole:?}: write [begin:end] or [begin:end:step], found [{body}]"
            ));
        }
    };
    if end.is_empty() {
        return Err(format!("host range {whole:?}: [{body}] has no end"));
    }
    let items = if is_letter(begin) && is_letter(end) {
        let (b, e) = (begin.as_bytes()[0], end.as_bytes()[0]);
        if b > e {
            return Err(format!("host range {whole:?}: [{body}] begins after it ends"));
        }
        (b..=e).step_by(step).map(|c| char::from(c).to_string()).collect::<Vec<_>>()
    } else {
        let begin = if begin.is_empty() { "0" } else { begin };
        let number = |text: &str| {
            text.parse::<u64>().ok().filter(|_| text.bytes().all(|c| c.is_ascii_digit())).ok_or_else(|| {
                format!(
                    "host range {whole:?}: [{body}] must be numbers or single letters, like [01:10] or [a:f]"
                )
            })
        };
        let (b, e) = (number(begin)?, number(end)?);
        if b > e {
            return Err(format!("host range {whole:?}: [{body}] begins after it ends"));
        }
        let width = if begin.len() > 1 && begin.starts_with('0') {
            if begin.len() != end.len() {
                return Err(format!(
                    "host range {whole:?}: [{body}] with a leading zero needs begin and end of the same width"
                ));
            }
            begin.len()
        } else {
            0
        };
        let count = (e - b) / step as u64 + 1;
        if count > MAX_HOSTS as u64 {
            return Err(format!("host range {whole:?} stands for {count} hosts, more than {MAX_HOSTS}"));
        }
        (b..=e).step_by(step).map(|n| format!("{n:0width$}")).collect()
    };
    for item in items {
        expand_into(whole, &format!("{head}{item}{tail}"), out)?;
    }
    Ok(())
}

fn is_letter(text: &str) -> bool {
    text.len() == 1 && text.as_bytes()[0].is_ascii_alphabetic()
}

fn push(whole: &str, out: &mut Vec<String>, name: String) -> Result<(), String> {
    if out.len() >= MAX_HOSTS {
        return Err(format!("host range {whole:?} stands for more than {MAX_HOSTS} hosts"));
    }
    out.push(name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ranges_keep_a_leading_zero_width_and_honour_the_step() {
        assert_eq!(
            expand("web[01:03].example.com").unwrap(),
            ["web01.example.com", "web02.example.com", "web03.example.com"]
        );
        assert_eq!(expand("n[1:10:4]").unwrap(), ["n1", "n5", "n9"]);
        assert_eq!(expand("n[:2]").unwrap(), ["n0", "n1", "n2"]);
        assert_eq!(expand("plain").unwrap(), ["plain"]);
    }

    #[test]
    fn letter_ranges_and_several_ranges_multiply() {
        assert_eq!(expand("db-[a:c]").unwrap(), ["db-a", "db-b", "db-c"]);
        assert_eq!(expand("r[1:2]-[x:y]").unwrap(), ["r1-x", "r1-y", "r2-x", "r2-y"]);
    }

    #[test]
    fn bad_ranges_are_refused_with_the_pattern() {
        for (pattern, says) in [
            ("web[3:1]", "begins after it ends"),
            ("web[1:]", "has no end"),
            ("web[1:3:0]", "step"),
            ("web[01:100]", "same width"),
            ("web[1:x]", "numbers or single letters"),
            ("web[1:3", "without its `]`"),
            ("web[1:99999999]", "more than 100000"),
            ("web[1:2:3:4]", "[begin:end:step]"),
        ] {
            let err = expand(pattern).unwrap_err();
            assert!(err.contains(says) && err.contains(pattern), "{pattern}: {err}");
        }
    }
}
