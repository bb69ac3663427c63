//! `${ENV_VAR}` in string values, so secrets stay out of the file. `$${` writes a literal `${`.
//! A missing variable is an error (with its key path), never an empty string.

pub fn interpolate(
    value: &mut toml::Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    walk(value, String::new(), lookup, &mut errors);
    errors
}

fn walk(
    value: &mut toml::Value,
    path: String,
    lookup: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<(String, String)>,
) {
    match value {
        toml::Value::String(s) => match expand(s, lookup) {
            Ok(expanded) => *s = expanded,
            Err(message) => errors.push((path, message)),
        },
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, format!("{path}[{i}]"), lookup, errors);
            }
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(item, child, lookup, errors);
            }
        }
        _ => {}
    }
}

/// Every unset variable of one string is named, not only the first, so one `check` run lists
/// all the variables a deployment still has to set.
fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut unset: Vec<&str> = Vec::new();
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| "unterminated ${...}".to_owned())?;
            let name = &tail[..end];
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("invalid environment variable name {name:?}"));
            }
            match lookup(name) {
                Some(value) => out.push_str(&value),
                None if !unset.contains(&name) => unset.push(name),
                None => {}
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    match unset.as_slice() {
        [] => Ok(out),
        [one] => Err(format!("environment variable {one} is not set")),
        many => Err(format!(
            "environment variables {} are not set",
            many.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cr3t".to_owned())
    }

    #[test]
    fn expands_escapes_and_reports_missing() {
        assert_eq!(expand("Bearer ${TOKEN}", &env), Ok("Bearer s3cr3t".into()));
        assert_eq!(
            expand("cost $5 and $${TOKEN}", &env),
            Ok("cost $5 and ${TOKEN}".into())
        );
        assert_eq!(
            expand("${MISSING}", &env),
            Err("environment variable MISSING is not set".into())
        );
        assert_eq!(
            expand("${A}:${TOKEN}:${B}:${A}", &env),
            Err("environment variables A, B are not set".into()),
            "every unset variable of a string is named, once"
        );
        assert!(expand("${TOKEN", &env).is_err());
        assert!(expand("${BAD-NAME}", &env).is_err());
    }

    #[test]
    fn walks_tables_and_arrays_with_paths() {
        let mut value: toml::Value =
            toml::from_str("a = [\"${TOKEN}\", \"${NOPE}\"]\n[b]\nc = \"${TOKEN}\"").unwrap();
        let errors = interpolate(&mut value, &env);
        assert_eq!(
            errors,
            vec![(
                "a[1]".to_owned(),
                "environment variable NOPE is not set".to_owned()
            )]
        );
        assert_eq!(value["b"]["c"].as_str(), Some("s3cr3t"));
    }
}
