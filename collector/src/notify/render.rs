//! Messages from templates: one message (subject and text) from the notices it groups, in the
//! contact's language. Pure apart from [`Templates::load`], which reads a province's files once
//! at configuration load.
//!
//! Each language is a directory of seven files (the built-in ones are in
//! `collector/templates/{vi,en}/`, see `docs/notifications.md`): `subject.txt` (a message about
//! one alert), `subject_many.txt` (several alerts grouped), one block per notice (`opened.txt`,
//! `resolved.txt`, `reminder.txt`, `resolved_late.txt`; blocks are joined by a blank line) and
//! `phrases.txt` (the names of alert kinds, detections, notices and time units). Times are local
//! to Asia/Ho_Chi_Minh: UTC+7, no daylight saving.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use netmon_events::{AlertKind, Detection, Notice};

use super::template::{Template, parse_phrases};
use super::units::{duration, local, measure, period};
use super::view::NoticeView;

/// The language used when a contact asks for one the templates do not have.
pub const DEFAULT_LANG: &str = "vi";

/// The placeholders of `subject.txt` and the notice blocks.
pub const NOTICE_FIELDS: &[&str] = &[
    "site",
    "commune",
    "province",
    "place",
    "link",
    "kind",
    "status",
    "since",
    "until",
    "period",
    "duration",
    "detected_by",
    "value",
    "threshold",
    "affected_count",
    "affected",
    "acknowledged_by",
    "agent",
    "alert",
];

/// The placeholders of `subject_many.txt`.
pub const MANY_FIELDS: &[&str] = &[
    "count",
    "opened_count",
    "resolved_count",
    "reminder_count",
    "sites",
];

macro_rules! builtin_files {
    ($lang:literal) => {
        [
            include_str!(concat!("../../templates/", $lang, "/subject.txt")),
            include_str!(concat!("../../templates/", $lang, "/subject_many.txt")),
            include_str!(concat!("../../templates/", $lang, "/opened.txt")),
            include_str!(concat!("../../templates/", $lang, "/resolved.txt")),
            include_str!(concat!("../../templates/", $lang, "/reminder.txt")),
            include_str!(concat!("../../templates/", $lang, "/resolved_late.txt")),
            include_str!(concat!("../../templates/", $lang, "/phrases.txt")),
        ]
    };
}

const BUILTIN: &[(&str, [&str; 7])] = &[("vi", builtin_files!("vi")), ("en", builtin_files!("en"))];

/// The file names of one language, in the order of [`BUILTIN`]'s arrays.
pub const FILES: [&str; 7] = [
    "subject.txt",
    "subject_many.txt",
    "opened.txt",
    "resolved.txt",
    "reminder.txt",
    "resolved_late.txt",
    "phrases.txt",
];

/// A template file that cannot be used: the file and what is wrong (the line, the placeholder).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {problem}", file.display())]
pub struct TemplateError {
    pub file: PathBuf,
    pub problem: String,
}

/// One language's parsed templates.
#[derive(Debug, Clone)]
struct Language {
    subject: Template,
    subject_many: Template,
    opened: Template,
    resolved: Template,
    reminder: Template,
    resolved_late: Template,
    phrases: BTreeMap<String, String>,
}

/// Every language's templates, checked.
#[derive(Debug, Clone)]
pub struct Templates {
    languages: BTreeMap<String, Language>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Templates {
    /// The templates compiled into the binary (`collector/templates/`), Vietnamese and English.
    pub fn builtin() -> Self {
        let mut languages = BTreeMap::new();
        for (lang, texts) in BUILTIN {
            let files = FILES.map(|f| PathBuf::from(format!("templates/{lang}/{f}")));
            // The built-in files are checked by the unit tests; they cannot fail here.
            #[allow(clippy::expect_used)]
            let language = parse_language(&files, texts).expect("built-in templates parse");
            languages.insert((*lang).to_string(), language);
        }
        Self { languages }
    }

    /// The built-in templates with the languages found in `dir` replaced: each subdirectory
    /// (`dir/vi/`, `dir/en/`, …) must hold all seven files.
    pub fn load(dir: &Path) -> Result<Self, TemplateError> {
        let error = |file: &Path, problem: String| TemplateError {
            file: file.to_path_buf(),
            problem,
        };
        let entries =
            std::fs::read_dir(dir).map_err(|e| error(dir, format!("cannot read: {e}")))?;
        let mut templates = Self::builtin();
        let mut found = 0;
        for entry in entries {
            let entry = entry.map_err(|e| error(dir, format!("cannot read: {e}")))?;
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let lang = entry.file_name().to_string_lossy().into_owned();
            if lang.is_empty() || !lang.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
                return Err(error(
                    &path,
                    "expected a language directory named like vi or en".into(),
                ));
            }
            let files = FILES.map(|f| path.join(f));
            let mut texts = Vec::with_capacity(FILES.len());
            for file in &files {
                let text = std::fs::read_to_string(file).map_err(|e| {
                    error(file, format!("missing or unreadable template file ({e})"))
                })?;
                texts.push(text);
            }
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            templates
                .languages
                .insert(lang, parse_language(&files, &texts)?);
            found += 1;
        }
        if found == 0 {
            return Err(error(
                dir,
                "no language directory (expected vi/ or en/ with the template files)".into(),
            ));
        }
        Ok(templates)
    }

    /// The languages there are templates for.
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.languages.keys().map(String::as_str)
    }

    /// Whether `lang` has templates (else messages fall back to [`DEFAULT_LANG`]).
    pub fn has_language(&self, lang: &str) -> bool {
        self.languages.contains_key(lang)
    }
}

fn parse_language(files: &[PathBuf; 7], texts: &[&str]) -> Result<Language, TemplateError> {
    let template = |i: usize, allowed: &[&str]| {
        Template::parse(texts[i], allowed).map_err(|problem| TemplateError {
            file: files[i].clone(),
            problem,
        })
    };
    let (required, optional) = phrase_keys();
    let phrases =
        parse_phrases(texts[6], &required, &optional).map_err(|problem| TemplateError {
            file: files[6].clone(),
            problem,
        })?;
    Ok(Language {
        subject: template(0, NOTICE_FIELDS)?,
        subject_many: template(1, MANY_FIELDS)?,
        opened: template(2, NOTICE_FIELDS)?,
        resolved: template(3, NOTICE_FIELDS)?,
        reminder: template(4, NOTICE_FIELDS)?,
        resolved_late: template(5, NOTICE_FIELDS)?,
        phrases,
    })
}

const DETECTIONS: &[Detection] = &[
    Detection::AgentProbes,
    Detection::LastWill,
    Detection::MissedHeartbeats,
    Detection::Statistics,
    Detection::StateChanges,
    Detection::Inventory,
];
const NOTICES: &[Notice] = &[
    Notice::Opened,
    Notice::Resolved,
    Notice::Reminder,
    Notice::ResolvedLate,
];

fn detection_key(d: Detection) -> &'static str {
    match d {
        Detection::AgentProbes => "agent_probes",
        Detection::LastWill => "last_will",
        Detection::MissedHeartbeats => "missed_heartbeats",
        Detection::Statistics => "statistics",
        Detection::StateChanges => "state_changes",
        Detection::Inventory => "inventory",
    }
}

fn notice_key(n: Notice) -> &'static str {
    match n {
        Notice::Opened => "opened",
        Notice::Resolved => "resolved",
        Notice::Reminder => "reminder",
        Notice::ResolvedLate => "resolved_late",
    }
}

/// Required phrase keys, and the optional `detection.<how>.<kind>` refinements.
fn phrase_keys() -> (Vec<String>, Vec<String>) {
    let mut required: Vec<String> = AlertKind::ALL
        .iter()
        .map(|k| format!("kind.{}", k.as_str()))
        .collect();
    required.extend(
        DETECTIONS
            .iter()
            .map(|d| format!("detection.{}", detection_key(*d))),
    );
    required.extend(NOTICES.iter().map(|n| format!("notice.{}", notice_key(*n))));
    for unit in ["day", "hour", "minute", "second"] {
        required.push(format!("duration.{unit}"));
    }
    required.push("number.decimal".into());
    let mut optional: Vec<String> = DETECTIONS
        .iter()
        .flat_map(|d| {
            AlertKind::ALL
                .iter()
                .map(move |k| format!("detection.{}.{}", detection_key(*d), k.as_str()))
        })
        .collect();
    optional.extend(
        VARIANTS
            .iter()
            .map(|(k, v)| format!("kind.{}.{v}", k.as_str())),
    );
    (required, optional)
}

/// The optional `kind.<kind>.<variant>` phrases: a kind told in more than one way.
const VARIANTS: &[(AlertKind, &str)] = &[
    (AlertKind::CoverageLost, "lost_5g"),
    (AlertKind::CoverageLost, "no_service"),
];

/// Which way of telling its kind a notice needs: a `coverage_lost` alert with a threshold (the
/// generation, 5) is about 5G, one without is about no service at all.
fn variant(v: &NoticeView) -> Option<&'static str> {
    match v.kind {
        AlertKind::CoverageLost if v.threshold.is_some() => Some("lost_5g"),
        AlertKind::CoverageLost => Some("no_service"),
        _ => None,
    }
}

/// Renders one message: `(subject, text)` in `lang` (or [`DEFAULT_LANG`]) for `notices`.
pub fn render(templates: &Templates, lang: &str, notices: &[NoticeView]) -> (String, String) {
    let Some(language) = templates
        .languages
        .get(lang)
        .or_else(|| templates.languages.get(DEFAULT_LANG))
        .or_else(|| templates.languages.values().next())
    else {
        return (String::new(), String::new());
    };
    let blocks: Vec<String> = notices
        .iter()
        .map(|v| {
            let template = match v.notice {
                Notice::Opened => &language.opened,
                Notice::Resolved => &language.resolved,
                Notice::Reminder => &language.reminder,
                Notice::ResolvedLate => &language.resolved_late,
            };
            template.render(&|name| field(language, v, name))
        })
        .collect();
    let subject = match notices {
        [one] => language.subject.render(&|name| field(language, one, name)),
        many => language.subject_many.render(&|name| many_field(many, name)),
    };
    (subject.replace('\n', " "), blocks.join("\n\n"))
}

fn phrase<'a>(language: &'a Language, key: &str) -> &'a str {
    language.phrases.get(key).map_or("", String::as_str)
}

/// A placeholder's value for one notice; empty when the view has nothing for it.
fn field(language: &Language, v: &NoticeView, name: &str) -> String {
    let decimal = phrase(language, "number.decimal");
    match name {
        "site" => v.site.clone().unwrap_or_else(|| v.agent.clone()),
        "commune" => v.commune.clone().unwrap_or_default(),
        "province" => v.province.clone().unwrap_or_default(),
        "place" => [&v.commune, &v.province]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        "link" => v.link.clone().unwrap_or_default(),
        "kind" => {
            let kind = format!("kind.{}", v.kind.as_str());
            variant(v)
                .and_then(|x| language.phrases.get(&format!("{kind}.{x}")))
                .cloned()
                .unwrap_or_else(|| phrase(language, &kind).into())
        }
        "status" => phrase(language, &format!("notice.{}", notice_key(v.notice))).into(),
        "since" => local(v.since),
        "until" => v.until.map(local).unwrap_or_default(),
        "period" => v.until.map(|u| period(v.since, u)).unwrap_or_default(),
        "duration" => v
            .duration_ms
            .map(|ms| duration(ms, &|u| phrase(language, &format!("duration.{u}")).into()))
            .unwrap_or_default(),
        "detected_by" => {
            let how = detection_key(v.detected_by);
            let refined = format!("detection.{how}.{}", v.kind.as_str());
            language
                .phrases
                .get(&refined)
                .cloned()
                .unwrap_or_else(|| phrase(language, &format!("detection.{how}")).into())
        }
        "value" => v
            .value
            .map(|x| measure(v.kind, x, decimal))
            .unwrap_or_default(),
        "threshold" => v
            .threshold
            .map(|x| measure(v.kind, x, decimal))
            .unwrap_or_default(),
        "affected_count" if !v.affected.is_empty() => v.affected.len().to_string(),
        "affected" => v.affected.join(", "),
        "acknowledged_by" => v.acknowledged_by.clone().unwrap_or_default(),
        "agent" => v.agent.clone(),
        "alert" => v.alert.to_string(),
        _ => String::new(),
    }
}

/// A placeholder's value for a grouped subject; counts of zero are empty (optional parts).
fn many_field(notices: &[NoticeView], name: &str) -> String {
    let count = |f: &dyn Fn(Notice) -> bool| {
        let n = notices.iter().filter(|v| f(v.notice)).count();
        if n == 0 { String::new() } else { n.to_string() }
    };
    match name {
        "count" => notices.len().to_string(),
        "opened_count" => count(&|n| n == Notice::Opened),
        "resolved_count" => count(&|n| matches!(n, Notice::Resolved | Notice::ResolvedLate)),
        "reminder_count" => count(&|n| n == Notice::Reminder),
        "sites" => {
            let mut sites: Vec<&str> = Vec::new();
            for v in notices {
                let site = v.site.as_deref().unwrap_or(&v.agent);
                if !sites.contains(&site) {
                    sites.push(site);
                }
            }
            sites.join(", ")
        }
        _ => String::new(),
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
