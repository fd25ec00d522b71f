//! The contract's error types: why a module failed, and why its arguments were rejected.

use crate::host::HostError;

/// Why a module could not plan or apply.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModuleError {
    /// The host could not run the command at all.
    #[error(transparent)]
    Host(#[from] HostError),
    /// A command on the host exited non-zero.
    #[error("`{command}` exited with {status}{}", stderr_suffix(.stderr))]
    Command {
        /// The command line that ran (never contains file content or secrets: those go on stdin).
        command: String,
        /// Exit status, or "a signal".
        status: String,
        /// The last lines of its stderr.
        stderr: String,
    },
    /// The host's state does not allow the requested change (e.g. a file where a directory is asked).
    #[error("{0}")]
    Refused(String),
}

impl ModuleError {
    /// Why it failed, without the command line: a failed command's stderr (its status when
    /// it printed nothing), or the whole message. For errors that name their place themselves
    /// ("cannot read X on the controller: REASON").
    pub fn reason(&self) -> String {
        match self {
            ModuleError::Command { stderr, .. } if !stderr.is_empty() => stderr.clone(),
            ModuleError::Command { command, status, .. } => format!("`{command}` exited with {status}"),
            other => other.to_string(),
        }
    }
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() { String::new() } else { format!(": {stderr}") }
}

/// Why a module's arguments were rejected.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{message}")]
pub struct ArgsError {
    /// What is wrong, naming the argument.
    pub message: String,
}

impl ArgsError {
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
}

/// Rewrites serde's message about module arguments into one a playbook author can act on:
/// it names the argument (`path` is where in the arguments serde failed, e.g. `mode` or
/// `ca.cert`), says what type or value was expected and what was given, and suggests the
/// nearest valid name for a misspelled argument or choice.
pub fn explain_args_error(path: &str, message: &str) -> String {
    let at = || if path.is_empty() { "the arguments".to_owned() } else { format!("argument `{path}`") };
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let (field, mut valid) = backticked_and_rest(rest);
        valid.sort();
        let suggestion = crate::suggest::did_you_mean(&field, valid.iter().map(String::as_str));
        // For an unknown field, the path ends with the field itself.
        let parent = path.rsplit_once('.').map(|(parent, _)| parent).unwrap_or_default();
        let name = if parent.is_empty() {
            format!("unknown argument `{field}`")
        } else {
            format!("unknown key `{field}` in argument `{parent}`")
        };
        return if !suggestion.is_empty() {
            format!("{name}{suggestion}")
        } else if valid.is_empty() {
            format!("{name}: it takes no keys")
        } else {
            format!("{name}; valid: {}", valid.join(", "))
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let (variant, valid) = backticked_and_rest(rest);
        let suggestion = crate::suggest::did_you_mean(&variant, valid.iter().map(String::as_str));
        let choices: Vec<String> = valid.iter().map(|v| format!("\"{v}\"")).collect();
        return format!("{} must be one of {}, got \"{variant}\"{suggestion}", at(), choices.join(", "));
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        let (field, _) = backticked_and_rest(rest);
        return if path.is_empty() {
            format!("missing required argument `{field}`")
        } else {
            format!("argument `{path}` lacks its required key `{field}`")
        };
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((unexpected, expected)) = rest.split_once(", expected ")
        {
            return format!("{} must be {}, got {}", at(), expected_phrase(expected), got_phrase(unexpected));
        }
    }
    if path.is_empty() {
        message.to_owned()
    } else if message.starts_with("a ") || message.starts_with("an ") {
        // An untagged enum's `expecting` text: what the value should have been.
        format!("argument `{path}` must be {message}")
    } else {
        format!("argument `{path}`: {message}")
    }
}

/// The first `name` in backticks, and every backticked name after it (the valid ones).
fn backticked_and_rest(text: &str) -> (String, Vec<String>) {
    let mut names = text.split('`').skip(1).step_by(2).map(str::to_owned);
    let first = names.next().unwrap_or_default();
    (first, names.collect())
}

/// serde's name for an expected type, in playbook words.
fn expected_phrase(expected: &str) -> String {
    match expected {
        "a sequence" => "a list (an array)".to_owned(),
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a borrowed string" => "a string".to_owned(),
        other if other.starts_with("struct ") || other.starts_with("map") => "a map #{ ... }".to_owned(),
        other => other.to_owned(),
    }
}

/// serde's description of the value given, in playbook words: "the integer 644".
fn got_phrase(unexpected: &str) -> String {
    let value = |prefix: &str| unexpected.strip_prefix(prefix).map(|v| v.trim_matches('`').to_owned());
    if let Some(v) = value("integer ") {
        format!("the integer {v}")
    } else if let Some(v) = value("floating point ") {
        format!("the number {v}")
    } else if let Some(v) = value("boolean ") {
        format!("the boolean {v}")
    } else if let Some(v) = value("string ") {
        format!("the string {v}")
    } else {
        match unexpected {
            "sequence" => "a list".to_owned(),
            "map" => "a map".to_owned(),
            "unit value" | "null" => "nothing (`()`)".to_owned(),
            other => other.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_leaves_out_the_command_line() {
        let failed = |stderr: &str| ModuleError::Command {
            command: "cat -- 'x'".into(),
            status: "status 1".into(),
            stderr: stderr.into(),
        };
        assert_eq!(failed("cat: x: No such file or directory").reason(), "cat: x: No such file or directory");
        assert_eq!(failed("").reason(), "`cat -- 'x'` exited with status 1");
        assert_eq!(ModuleError::Refused("no".into()).reason(), "no");
    }

    #[test]
    fn an_unknown_argument_gets_the_nearest_name() {
        let message = "unknown field `contnet`, expected one of `path`, `state`, `content`, `mode`";
        assert_eq!(
            explain_args_error("contnet", message),
            "unknown argument `contnet`; did you mean `content`?"
        );
        let far = "unknown field `zzzz`, expected one of `path`, `state`";
        assert_eq!(explain_args_error("zzzz", far), "unknown argument `zzzz`; valid: path, state");
        let nested = "unknown field `apii`, expected one of `api`, `etcd`";
        assert_eq!(
            explain_args_error("config.apii", nested),
            "unknown key `apii` in argument `config`; did you mean `api`?"
        );
    }

    #[test]
    fn a_wrong_type_names_the_argument_and_both_types() {
        let message = "invalid type: integer `644`, expected an octal mode string like \"0644\"";
        assert_eq!(
            explain_args_error("mode", message),
            "argument `mode` must be an octal mode string like \"0644\", got the integer 644"
        );
        assert_eq!(
            explain_args_error("names", "invalid type: string \"x\", expected a sequence"),
            "argument `names` must be a list (an array), got the string \"x\""
        );
    }

    #[test]
    fn an_unknown_choice_lists_the_choices_and_the_nearest() {
        let message = "unknown variant `dir`, expected one of `file`, `directory`, `absent`";
        assert_eq!(
            explain_args_error("state", message),
            "argument `state` must be one of \"file\", \"directory\", \"absent\", got \"dir\"; did you mean `directory`?"
        );
    }

    #[test]
    fn missing_and_custom_errors_name_the_argument() {
        assert_eq!(explain_args_error("", "missing field `path`"), "missing required argument `path`");
        assert_eq!(
            explain_args_error("ca", "missing field `cert`"),
            "argument `ca` lacks its required key `cert`"
        );
        assert_eq!(
            explain_args_error("mode", "invalid mode \"0999\""),
            "argument `mode`: invalid mode \"0999\""
        );
        assert_eq!(explain_args_error("", "either cmd or argv"), "either cmd or argv");
    }
}
