//! `until` conditions of retried tasks: Jinja expressions over a task's outputs.

use contract::Outputs;

/// Checks that `expression` is a valid Jinja expression.
pub fn compile(expression: &str) -> Result<(), minijinja::Error> {
    let env = minijinja::Environment::new();
    env.compile_expression(expression).map(drop)
}

/// The top-level names `expression` reads (`rc` and `stdout` in `rc == 0 and "ok" in stdout`),
/// sorted.
pub fn names(expression: &str) -> Result<Vec<String>, minijinja::Error> {
    let env = minijinja::Environment::new();
    let compiled = env.compile_expression(expression)?;
    let mut names: Vec<String> = compiled.undeclared_variables(false).into_iter().collect();
    names.sort();
    Ok(names)
}

/// Whether `expression` holds for `outputs` (`rc == 0 and "ok" in stdout`).
pub fn holds(expression: &str, outputs: &Outputs) -> Result<bool, minijinja::Error> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let compiled = env.compile_expression(expression)?;
    let value = compiled.eval(minijinja::Value::from(minijinja::value::Serde(outputs)))?;
    Ok(value.is_true())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn evaluates_over_outputs() {
        let outputs = json!({"rc": 0, "stdout": "etcd is healthy"}).as_object().cloned().unwrap();
        assert!(holds("rc == 0 and 'healthy' in stdout", &outputs).unwrap());
        assert!(!holds("rc != 0", &outputs).unwrap());
        assert!(holds("missing == 1", &outputs).is_err(), "undefined names are errors");
        assert!(compile("rc ==").is_err());
        assert_eq!(names("rc == 0 and 'x' in stdout and object.a").unwrap(), ["object", "rc", "stdout"]);
    }
}
