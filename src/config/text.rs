//! The pure text helpers of configuration files: JSONC (comments and trailing commas, as
//! VS Code writes), `${VAR}` / `${env:VAR}` expansion, and seconds as durations.

use std::time::Duration;

/// A non-negative, finite number of seconds (fractions allowed) as a `Duration`; the error
/// says what the number must be.
pub(crate) fn duration_from_secs(x: f64) -> Result<Duration, &'static str> {
    if x.is_nan() {
        return Err("must be a number of seconds");
    }
    if x < 0.0 {
        return Err("must not be negative");
    }
    Duration::try_from_secs_f64(x).map_err(|_| "must be less than 2^64 seconds")
}

/// Expands `${VAR}` and `${env:VAR}` from this process's environment.
pub(crate) fn expand(s: &str) -> Result<String, String> {
    expand_with(s, |name| std::env::var(name))
}

/// Expands `${VAR}` and `${env:VAR}` through `lookup`. A `$` not followed by `{` is literal
/// (`$$` too); an unclosed `${`, an empty name, another `${kind:...}` (VS Code's
/// `${input:...}`, ...) or an unset variable is an error.
fn expand_with(
    s: &str,
    lookup: impl Fn(&str) -> Result<String, std::env::VarError>,
) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unclosed `${{` in `{s}`"));
        };
        let inner = &after[..end];
        let name = inner.strip_prefix("env:").unwrap_or(inner);
        if name.is_empty() {
            return Err(format!("empty variable name `${{{inner}}}`"));
        }
        if name.contains(':') {
            return Err(format!(
                "unsupported variable `${{{inner}}}` (only `${{VAR}}` and `${{env:VAR}}`)"
            ));
        }
        match lookup(name) {
            Ok(value) => out.push_str(&value),
            Err(std::env::VarError::NotPresent) => {
                return Err(format!("environment variable `{name}` is not set"))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(format!("environment variable `{name}` is not valid UTF-8"))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Blanks out `//` and `/* */` comments and trailing commas (VS Code writes JSONC), keeping
/// every line and column where it was so JSON errors point at the right place.
pub(crate) fn strip_jsonc(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let blank = |b: &mut u8| {
        if *b != b'\n' && *b != b'\r' {
            *b = b' ';
        }
    };
    // Comments.
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match (b, bytes.get(i + 1)) {
            (b'"', _) => in_string = true,
            (b'/', Some(b'/')) => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    blank(&mut bytes[i]);
                    i += 1;
                }
                continue;
            }
            (b'/', Some(b'*')) => {
                let end = bytes[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(bytes.len(), |p| i + 2 + p + 2);
                for b in &mut bytes[i..end] {
                    blank(b);
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    // Trailing commas: a comma followed (past whitespace) by `}` or `]`.
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b',' {
            let next = bytes[i + 1..].iter().find(|c| !c.is_ascii_whitespace());
            if matches!(next, Some(b'}' | b']')) {
                bytes[i] = b' ';
            }
        }
        i += 1;
    }
    // Only ASCII bytes outside strings and whole comments were replaced, by ASCII spaces.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::env::VarError;

    fn vars(name: &str) -> Result<String, VarError> {
        match name {
            "HOME" => Ok("/home/me".into()),
            "EMPTY" => Ok(String::new()),
            _ => Err(VarError::NotPresent),
        }
    }

    #[test]
    fn expands_both_syntaxes() {
        assert_eq!(expand_with("${HOME}/x", vars).unwrap(), "/home/me/x");
        assert_eq!(expand_with("${env:HOME}/x", vars).unwrap(), "/home/me/x");
        assert_eq!(
            expand_with("a${HOME}b${env:EMPTY}c${HOME}", vars).unwrap(),
            "a/home/mebc/home/me"
        );
        assert_eq!(expand_with("no vars", vars).unwrap(), "no vars");
        assert_eq!(expand_with("", vars).unwrap(), "");
    }

    #[test]
    fn lone_dollars_are_literal() {
        assert_eq!(expand_with("$HOME $$ a$ $", vars).unwrap(), "$HOME $$ a$ $");
        assert_eq!(expand_with("$${HOME}", vars).unwrap(), "$/home/me");
        assert_eq!(expand_with("€${HOME}€", vars).unwrap(), "€/home/me€");
    }

    #[test]
    fn expansion_errors() {
        assert_eq!(
            expand_with("${NOPE}", vars).unwrap_err(),
            "environment variable `NOPE` is not set"
        );
        assert_eq!(
            expand_with("x${env:NOPE}", vars).unwrap_err(),
            "environment variable `NOPE` is not set"
        );
        assert!(expand_with("${HOME", vars)
            .unwrap_err()
            .contains("unclosed"));
        assert!(expand_with("${HOME}${", vars)
            .unwrap_err()
            .contains("unclosed"));
        assert!(expand_with("${}", vars).unwrap_err().contains("empty"));
        assert!(expand_with("${env:}", vars).unwrap_err().contains("empty"));
        let e = expand_with("${input:token}", vars).unwrap_err();
        assert!(e.contains("unsupported variable `${input:token}`"), "{e}");
        let e = expand_with("${X}", |_| Err(VarError::NotUnicode("x".into()))).unwrap_err();
        assert!(e.contains("not valid UTF-8"), "{e}");
    }

    #[test]
    fn jsonc_comments_and_trailing_commas_are_blanked() {
        let text = "{\n  // a comment, with \"quotes\"\n  \"a\": \"http://x/*y*/\", /* c\n d */ \"b\": [1, 2,],\n}";
        let stripped = strip_jsonc(text);
        assert_eq!(stripped.len(), text.len());
        assert_eq!(stripped.lines().count(), text.lines().count());
        let v: Value = serde_json::from_str(&stripped).unwrap();
        assert_eq!(v, serde_json::json!({"a": "http://x/*y*/", "b": [1, 2]}));
        // Commas inside strings stay.
        let v: Value = serde_json::from_str(&strip_jsonc(r#"{"a": ",}", "b": "\",]"}"#)).unwrap();
        assert_eq!(v, serde_json::json!({"a": ",}", "b": "\",]"}));
        // Non-ASCII in comments keeps the text valid.
        let v: Value = serde_json::from_str(&strip_jsonc("{/* é */\"a\": 1 // ü\n}")).unwrap();
        assert_eq!(v, serde_json::json!({"a": 1}));
    }

    #[test]
    fn durations_from_seconds() {
        assert_eq!(
            duration_from_secs(1.5).unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(duration_from_secs(0.0).unwrap(), Duration::ZERO);
        assert_eq!(duration_from_secs(30.0).unwrap(), Duration::from_secs(30));
        assert_eq!(
            duration_from_secs(-1.0).unwrap_err(),
            "must not be negative"
        );
        assert_eq!(
            duration_from_secs(-0.001).unwrap_err(),
            "must not be negative"
        );
        assert_eq!(
            duration_from_secs(f64::NAN).unwrap_err(),
            "must be a number of seconds"
        );
        assert!(duration_from_secs(f64::INFINITY).is_err());
        assert!(duration_from_secs(1e30).is_err());
    }
}
