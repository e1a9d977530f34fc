//! The little template language of the message files, and the phrase files (pure).
//!
//! A template is lines of text with `{placeholder}` fields. `{name:upper}` writes the value in
//! capitals (Vietnamese diacritics included: "MẤT KẾT NỐI"); `{name:lower}` makes its first
//! letter lower case ("Mất kết nối" → "mất kết nối", "5G" stays "5G"). A part in `[ … ]` is
//! optional: it is left out when any placeholder inside it is empty, and a line that is left
//! with nothing but spaces because of that disappears. `{{`, `}}`, `[[` and `]]` write the
//! bracket itself. Templates are parsed once, at configuration load, against the placeholders
//! their file may use, so rendering cannot fail.
//!
//! A phrase file holds `key = text` lines (`#` starts a comment line).

use std::collections::BTreeMap;

/// How a placeholder's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    AsIs,
    Upper,
    LowerFirst,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field {
        name: String,
        case: Case,
    },
    /// Left out when any field inside renders empty; holds no nested group.
    Optional(Vec<Piece>),
}

/// A parsed template: lines of pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    lines: Vec<Vec<Piece>>,
}

impl Template {
    /// Parses `text`, accepting only the placeholders in `allowed`. Errors say the line and
    /// the placeholder (`line 2: unknown placeholder {sitee}; expected one of …`).
    pub fn parse(text: &str, allowed: &[&str]) -> Result<Self, String> {
        let text = text.trim_end_matches(['\n', '\r']);
        let mut lines = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            lines.push(parse_line(line, allowed).map_err(|e| format!("line {}: {e}", n + 1))?);
        }
        Ok(Self { lines })
    }

    /// Writes the template with `value(name)` for each placeholder.
    pub fn render(&self, value: &dyn Fn(&str) -> String) -> String {
        let mut out: Vec<String> = Vec::new();
        for line in &self.lines {
            let mut text = String::new();
            let mut dropped = false;
            for piece in line {
                match piece {
                    Piece::Text(t) => text.push_str(t),
                    Piece::Field { name, case } => text.push_str(&cased(&value(name), *case)),
                    Piece::Optional(inner) => {
                        let mut part = String::new();
                        let mut complete = true;
                        for p in inner {
                            match p {
                                Piece::Text(t) => part.push_str(t),
                                Piece::Field { name, case } => {
                                    let v = value(name);
                                    complete &= !v.trim().is_empty();
                                    part.push_str(&cased(&v, *case));
                                }
                                Piece::Optional(_) => {}
                            }
                        }
                        if complete {
                            text.push_str(&part);
                        } else {
                            dropped = true;
                        }
                    }
                }
            }
            if dropped && text.trim().is_empty() {
                continue;
            }
            out.push(text.trim_end().to_string());
        }
        out.join("\n")
    }
}

fn cased(value: &str, case: Case) -> String {
    match case {
        Case::AsIs => value.to_string(),
        Case::Upper => value.to_uppercase(),
        Case::LowerFirst => {
            let mut chars = value.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => String::new(),
            }
        }
    }
}

fn parse_line(line: &str, allowed: &[&str]) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    // The pieces of the optional group being read, if any.
    let mut group: Option<Vec<Piece>> = None;
    let mut text = String::new();
    let mut chars = line.chars().peekable();
    let flush = |text: &mut String, group: &mut Option<Vec<Piece>>, pieces: &mut Vec<Piece>| {
        if !text.is_empty() {
            let t = Piece::Text(std::mem::take(text));
            group.as_mut().unwrap_or(pieces).push(t);
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '{' | '}' | '[' | ']' if chars.peek() == Some(&c) => {
                chars.next();
                text.push(c);
            }
            '{' => {
                let mut spec = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => spec.push(c),
                        None => return Err(format!("unclosed placeholder {{{spec}")),
                    }
                }
                let (name, case) = match spec.split_once(':') {
                    None => (spec.as_str(), Case::AsIs),
                    Some((name, "upper")) => (name, Case::Upper),
                    Some((name, "lower")) => (name, Case::LowerFirst),
                    Some((_, other)) => {
                        return Err(format!(
                            "unknown modifier :{other} in {{{spec}}}; expected :upper or :lower"
                        ));
                    }
                };
                if !allowed.contains(&name) {
                    return Err(format!(
                        "unknown placeholder {{{name}}}; expected one of {}",
                        allowed
                            .iter()
                            .map(|a| format!("{{{a}}}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                flush(&mut text, &mut group, &mut pieces);
                let field = Piece::Field {
                    name: name.to_string(),
                    case,
                };
                group.as_mut().unwrap_or(&mut pieces).push(field);
            }
            '}' => return Err("a single } (write }} for the character)".into()),
            '[' => {
                if group.is_some() {
                    return Err("optional parts [ ] cannot be nested".into());
                }
                flush(&mut text, &mut group, &mut pieces);
                group = Some(Vec::new());
            }
            ']' => {
                flush(&mut text, &mut group, &mut pieces);
                match group.take() {
                    Some(inner) => pieces.push(Piece::Optional(inner)),
                    None => return Err("a ] without its [ (write ]] for the character)".into()),
                }
            }
            c => text.push(c),
        }
    }
    if group.is_some() {
        return Err("an optional part [ is not closed on its line".into());
    }
    flush(&mut text, &mut group, &mut pieces);
    Ok(pieces)
}

/// Parses a phrase file: every key in `required` must be present, keys in `optional` may be,
/// and nothing else. Errors name the line or the key.
pub fn parse_phrases(
    text: &str,
    required: &[String],
    optional: &[String],
) -> Result<BTreeMap<String, String>, String> {
    let mut phrases = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {}: expected `key = text`", n + 1));
        };
        let key = key.trim();
        if !required.iter().chain(optional).any(|k| k == key) {
            return Err(format!("line {}: unknown key {key}", n + 1));
        }
        if phrases
            .insert(key.to_string(), value.trim().to_string())
            .is_some()
        {
            return Err(format!("line {}: key {key} given twice", n + 1));
        }
    }
    if let Some(missing) = required.iter().find(|k| !phrases.contains_key(*k)) {
        return Err(format!("missing key {missing}"));
    }
    Ok(phrases)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn render(template: &str, values: &[(&str, &str)]) -> String {
        let allowed: Vec<&str> = values.iter().map(|(k, _)| *k).collect();
        let t = Template::parse(template, &allowed).unwrap();
        t.render(&|name| {
            values
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        })
    }

    #[test]
    fn fields_cases_and_escapes() {
        let values = [("kind", "Mất kết nối"), ("x", "5G")];
        assert_eq!(
            render(
                "{kind:upper} / {kind:lower} / {x:lower} {{ok}} [[1]]",
                &values
            ),
            "MẤT KẾT NỐI / mất kết nối / 5G {ok} [1]"
        );
    }

    #[test]
    fn optional_parts_and_lines_vanish_when_a_field_is_empty() {
        let values = [("site", "UBND xã Cẩm Tú"), ("place", ""), ("n", "")];
        let text = "A {site}[ ({place})]\n[Ảnh hưởng {n} điểm]\nB";
        assert_eq!(render(text, &values), "A UBND xã Cẩm Tú\nB");
        let values = [("site", "S"), ("place", "xã Cẩm Tú"), ("n", "3")];
        assert_eq!(
            render(text, &values),
            "A S (xã Cẩm Tú)\nẢnh hưởng 3 điểm\nB"
        );
        // A line empty in the file stays (it separates paragraphs).
        assert_eq!(render("a\n\nb", &values), "a\n\nb");
    }

    #[test]
    fn errors_name_the_line_and_the_placeholder() {
        let e = Template::parse("ok {site}\nbad {sitee}", &["site"]).unwrap_err();
        assert!(e.starts_with("line 2: unknown placeholder {sitee}"), "{e}");
        assert!(e.contains("{site}"), "{e}");
        for bad in ["{site", "x }", "[a [b]]", "[{site}", "a]", "{site:shout}"] {
            assert!(Template::parse(bad, &["site"]).is_err(), "{bad}");
        }
    }

    #[test]
    fn phrases_need_every_required_key_and_no_other() {
        let req = vec!["a".to_string(), "b".to_string()];
        let opt = vec!["c".to_string()];
        let p = parse_phrases("# x\na = 1\n\nb = hai = 2\n", &req, &opt).unwrap();
        assert_eq!(p["b"], "hai = 2");
        assert!(
            parse_phrases("a = 1", &req, &opt)
                .unwrap_err()
                .contains("missing key b")
        );
        assert!(
            parse_phrases("a = 1\nb=2\nd=3", &req, &opt)
                .unwrap_err()
                .contains("line 3: unknown key d")
        );
        assert!(
            parse_phrases("a 1", &req, &opt)
                .unwrap_err()
                .contains("line 1")
        );
    }
}
