//! Policy files: documents built from the real keys with arbitrary values, in the three ways
//! TOML can spell a table, checked against a model of what each key accepts; and arbitrary or
//! mangled text, which must give an error that points into the text.

use std::time::Duration;

use ks_policies::{Backend, ByteSize, GuestImage, Policy, PolicyError};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::check;

const ORIGIN: &str = "fuzz.toml";

/// Every key a policy has, in the order `Policy::validate` checks them.
const KEYS: [(&str, &str); 10] = [
    ("limits", "wall-time"),
    ("limits", "memory"),
    ("limits", "fuel"),
    ("limits", "output"),
    ("attempts", "max"),
    ("sandbox", "backends"),
    ("sandbox", "guest"),
    ("docker", "image"),
    ("docker", "cpus"),
    ("docker", "pids"),
];

/// A TOML value, with enough structure kept to know what the parser must make of it.
#[derive(Debug, Clone)]
enum Value {
    Int(i64, IntStyle),
    Float(f64),
    Bool(bool),
    /// A string whose meaning the model does not predict.
    Text(String),
    /// `"<n><sep><unit>"`, a byte size or not depending on the unit.
    Size(u64, &'static str, &'static str),
    /// `"<n><unit>"`, a duration in a unit humantime knows.
    Duration(u64, &'static str),
    Array(Vec<Value>),
    Table(Vec<(String, Value)>),
}

#[derive(Debug, Clone, Copy)]
enum IntStyle {
    Plain,
    Grouped,
    Hex,
}

/// How a document spells its tables.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// `[limits]` then `memory = ...`.
    Headers,
    /// `limits.memory = ...` at the top level.
    Dotted,
    /// `limits = { memory = ..., fuel = ... }`.
    Inline,
}

#[derive(Debug, Clone)]
struct Doc {
    /// (section, key, value), sections grouped in the order given.
    entries: Vec<(&'static str, String, Value)>,
    text: String,
    /// The 1-based line each entry landed on.
    lines: Vec<usize>,
    /// The line of each entry's `[section]` header, in the `Headers` layout.
    headers: Vec<Option<usize>>,
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn render(value: &Value) -> String {
    match value {
        Value::Int(n, IntStyle::Hex) if *n >= 0 => format!("0x{n:x}"),
        Value::Int(n, IntStyle::Grouped) => {
            let digits = n.unsigned_abs().to_string();
            let mut grouped = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    grouped.push('_');
                }
                grouped.push(c);
            }
            if *n < 0 {
                format!("-{grouped}")
            } else {
                grouped
            }
        }
        Value::Int(n, _) => n.to_string(),
        Value::Float(x) if x.is_nan() => "nan".into(),
        Value::Float(x) if x.is_infinite() => (if *x > 0.0 { "inf" } else { "-inf" }).into(),
        // `{:?}` always writes a fraction or an exponent (`1.0`, `1e300`), as TOML floats need.
        Value::Float(x) => format!("{x:?}"),
        Value::Bool(b) => b.to_string(),
        Value::Text(s) => quote(s),
        Value::Size(n, sep, unit) => quote(&format!("{n}{sep}{unit}")),
        Value::Duration(n, unit) => quote(&format!("{n}{unit}")),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(render).collect::<Vec<_>>().join(", ")
        ),
        Value::Table(fields) => format!(
            "{{ {} }}",
            fields
                .iter()
                .map(|(k, v)| format!("{} = {}", quote(k), render(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn build(layout: Layout, entries: Vec<(&'static str, String, Value)>, comments: bool) -> Doc {
    let mut text = String::new();
    let mut lines = Vec::new();
    let mut headers = Vec::new();
    let mut line = 1;
    let mut push = |text: &mut String, s: &str| {
        text.push_str(s);
        text.push('\n');
        line += 1;
        line - 1
    };
    if comments {
        push(&mut text, "# a policy written by the fuzzer");
    }
    let mut i = 0;
    while i < entries.len() {
        let section = entries[i].0;
        let group: Vec<usize> = (i..entries.len())
            .take_while(|&j| entries[j].0 == section)
            .collect();
        match layout {
            Layout::Headers => {
                let header = push(&mut text, &format!("[{section}]"));
                for &j in &group {
                    let (_, key, value) = &entries[j];
                    lines.push(push(&mut text, &format!("{key} = {}", render(value))));
                    headers.push(Some(header));
                }
            }
            Layout::Dotted => {
                for &j in &group {
                    let (_, key, value) = &entries[j];
                    lines.push(push(
                        &mut text,
                        &format!("{section}.{key} = {}", render(value)),
                    ));
                    headers.push(None);
                }
            }
            Layout::Inline => {
                let fields: Vec<String> = group
                    .iter()
                    .map(|&j| format!("{} = {}", entries[j].1, render(&entries[j].2)))
                    .collect();
                let at = push(
                    &mut text,
                    &format!("{section} = {{ {} }}", fields.join(", ")),
                );
                lines.extend(group.iter().map(|_| at));
                headers.extend(group.iter().map(|_| None));
            }
        }
        if comments {
            push(&mut text, "");
        }
        i += group.len();
    }
    Doc {
        entries,
        text,
        lines,
        headers,
    }
}

fn int() -> impl Strategy<Value = Value> {
    let style = prop_oneof![
        4 => Just(IntStyle::Plain),
        1 => Just(IntStyle::Grouped),
        1 => Just(IntStyle::Hex),
    ];
    let n = prop_oneof![
        4 => -3i64..40,
        2 => prop::sample::select(vec![
            15, 16, 17, 65_535, 65_536, 65_537, 999_999, 1_000_000, 1023, 1024, 1025,
            (64 << 20) - 1, 64 << 20, (64 << 30) + 1, 4 << 30, (4 << 30) + 1,
            i64::from(u32::MAX), i64::from(u32::MAX) + 1, i64::MAX, i64::MIN, -1,
        ]),
        1 => any::<i64>(),
    ];
    (n, style).prop_map(|(n, style)| Value::Int(n, style))
}

fn float() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::sample::select(vec![
            0.0, -0.0, 0.5, 1.0, 1.5, 63.999, 64.0, 64.000_000_1, 65.0, -1.0, 1e-300, 5e-324,
            1e300, f64::NAN, f64::INFINITY, f64::NEG_INFINITY,
        ]),
        2 => 0.0f64..70.0,
        1 => any::<f64>(),
    ]
    .prop_map(Value::Float)
}

fn size() -> impl Strategy<Value = Value> {
    let n = prop_oneof![
        3 => 0u64..5000,
        1 => prop::sample::select(vec![1, 4, 63, 64, 65, 1023, 1024, 1025, u64::MAX / 1024 + 1]),
        1 => any::<u64>(),
    ];
    let sep = prop::sample::select(vec!["", "", " ", "  ", "\t"]);
    let unit = prop::sample::select(vec![
        "B", "KB", "MB", "GB", "KiB", "MiB", "GiB", "TiB", "", "gib", "kb", "PiB", "GiB x", ".5GiB",
    ]);
    (n, sep, unit).prop_map(|(n, sep, unit)| Value::Size(n, sep, unit))
}

fn duration() -> impl Strategy<Value = Value> {
    let n = prop_oneof![
        3 => 0u64..100,
        1 => prop::sample::select(vec![999, 1000, 1001, 1440, 1441, 86_399, 86_400, 86_401]),
        1 => 0u64..10_000_000,
    ];
    let unit = prop::sample::select(vec!["s", "sec", "ms", "m", "min", "h", "hours", "d"]);
    (n, unit).prop_map(|(n, unit)| Value::Duration(n, unit))
}

fn text() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "wasm", "docker", "plain", "prewarmed", "WASM", "podman", "", " ",
            "kaggle-solver/native:latest", "a b", "img\tx", "x\u{a0}y", "30m", "1h 30m",
            "1.5h", "30", "30 parsecs", "0", "4GiB", "-1", "nan",
        ])
        .prop_map(|s| Value::Text(s.to_owned())),
        1 => "\\PC{0,24}".prop_map(Value::Text),
        1 => any::<String>().prop_map(Value::Text),
    ]
}

/// Any value at all, nested a little.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        int(),
        float(),
        any::<bool>().prop_map(Value::Bool),
        text(),
        size(),
        duration(),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z-]{1,8}", inner), 0..3).prop_map(Value::Table),
        ]
    })
}

fn backend_list() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(vec!["wasm", "docker"]).prop_map(|s| Value::Text(s.to_owned())),
            1 => text(),
        ],
        0..4,
    )
    .prop_map(Value::Array)
}

/// A well-typed value for `key`, near and on both sides of its bounds.
fn tame_value(key: &str) -> BoxedStrategy<Value> {
    let plain = |n: std::ops::RangeInclusive<i64>| n.prop_map(|n| Value::Int(n, IntStyle::Plain));
    let word = |words: Vec<&'static str>| {
        prop::sample::select(words).prop_map(|w| Value::Text(w.to_owned()))
    };
    match key {
        "wall-time" => (
            1u64..200,
            prop::sample::select(vec!["s", "m", "min", "h", "ms"]),
        )
            .prop_map(|(n, unit)| Value::Duration(n, unit))
            .boxed(),
        "memory" => prop_oneof![
            (32u64..2048, Just(""), Just("MiB")).prop_map(|(n, s, u)| Value::Size(n, s, u)),
            (1u64..70, Just(" "), Just("GiB")).prop_map(|(n, s, u)| Value::Size(n, s, u)),
            plain((60 << 20)..=(70 << 20)),
        ]
        .boxed(),
        "output" => prop_oneof![
            (1u64..4096, Just(""), Just("KiB")).prop_map(|(n, s, u)| Value::Size(n, s, u)),
            (900u64..5000, Just(" "), Just("MB")).prop_map(|(n, s, u)| Value::Size(n, s, u)),
            plain(1000..=1100),
        ]
        .boxed(),
        "fuel" => plain(999_990..=2_000_000).boxed(),
        "max" => plain(0..=21).boxed(),
        "pids" => prop_oneof![plain(14..=40), plain(65_530..=65_540)].boxed(),
        "cpus" => prop_oneof![(0.0f64..66.0).prop_map(Value::Float), plain(0..=65)].boxed(),
        "backends" => prop::collection::vec(word(vec!["wasm", "docker"]), 0..3)
            .prop_map(Value::Array)
            .boxed(),
        "guest" => word(vec!["plain", "prewarmed"]).boxed(),
        "image" => word(vec![
            "kaggle-solver/native:latest",
            "python:3.12",
            "x",
            "a b",
            "",
        ])
        .boxed(),
        other => unreachable!("no key {other}"),
    }
}

/// Mostly the kind of value a key takes, sometimes anything.
fn value_for(key: &str) -> BoxedStrategy<Value> {
    let usual = match key {
        "wall-time" => prop_oneof![3 => duration(), 1 => text()].boxed(),
        "memory" | "output" => prop_oneof![3 => size(), 2 => int()].boxed(),
        "fuel" | "max" | "pids" => int().boxed(),
        "backends" => backend_list().boxed(),
        "guest" | "image" => text().boxed(),
        "cpus" => prop_oneof![float(), int()].boxed(),
        other => unreachable!("no key {other}"),
    };
    prop_oneof![6 => usual, 1 => any_value()].boxed()
}

/// A policy document. Half are tame (well-typed values near their bounds, no unknown keys), so
/// that accepted policies and range errors are common; wild ones mostly exercise type errors.
fn doc() -> impl Strategy<Value = Doc> {
    any::<bool>().prop_flat_map(doc_of)
}

fn doc_of(tame: bool) -> impl Strategy<Value = Doc> {
    let layout = prop::sample::select(vec![Layout::Headers, Layout::Dotted, Layout::Inline]);
    let chosen = prop::sample::subsequence(KEYS.to_vec(), 0..=KEYS.len())
        .prop_shuffle()
        .prop_flat_map(move |keys| {
            keys.into_iter()
                .map(|(section, key)| {
                    let value = if tame {
                        tame_value(key)
                    } else {
                        value_for(key)
                    };
                    value.prop_map(move |v| (section, key.to_owned(), v))
                })
                .collect::<Vec<_>>()
        });
    let stray = prop_oneof![
        8 => Just(None),
        1 => prop::sample::select(vec![
            ("limits", "memroy"),
            ("limits", "Memory"),
            ("attempts", "min"),
            ("network", "allow"),
            ("sandbox", "backend"),
            ("docker", "cpu"),
        ])
        .prop_map(Some),
    ];
    (layout, chosen, stray, any::<bool>()).prop_map(
        move |(layout, mut entries, stray, comments)| {
            if let Some((section, key)) = stray.filter(|_| !tame) {
                entries.push((section, key.to_owned(), Value::Int(1, IntStyle::Plain)));
            }
            // A table may be spelled only once, so each section's keys go together (a stable sort
            // by the section's first appearance keeps the shuffled order within it).
            let sections: Vec<&str> = entries.iter().map(|e| e.0).collect();
            entries.sort_by_key(|e| sections.iter().position(|s| *s == e.0));
            build(layout, entries, comments)
        },
    )
}

/// What the parser must make of one key's value.
#[derive(Debug, Clone, PartialEq)]
enum Parsed {
    Duration(Duration),
    Size(ByteSize),
    Count(u64),
    Cpus(f64),
    Backends(Vec<Backend>),
    Guest(GuestImage),
    Image(String),
}

/// `Ok(Some)` the value it must parse to, `Ok(None)` when the model cannot tell, `Err` when it
/// must be refused as the wrong type or unparsable.
fn model(key: &str, value: &Value) -> Result<Option<Parsed>, ()> {
    let count = |n: i64, max: u64| match u64::try_from(n) {
        Ok(n) if n <= max => Ok(Some(Parsed::Count(n))),
        _ => Err(()),
    };
    match (key, value) {
        ("wall-time", Value::Duration(n, unit)) => {
            let d = match *unit {
                "s" | "sec" => Duration::from_secs(*n),
                "ms" => Duration::from_millis(*n),
                "m" | "min" => Duration::from_secs(n * 60),
                "h" | "hours" => Duration::from_secs(n * 3600),
                "d" => Duration::from_secs(n * 86_400),
                other => unreachable!("no duration unit {other}"),
            };
            Ok(Some(Parsed::Duration(d)))
        }
        ("wall-time", Value::Text(_)) => Ok(None),
        ("memory" | "output", Value::Int(n, _)) => u64::try_from(*n)
            .map(|n| Some(Parsed::Size(ByteSize(n))))
            .map_err(|_| ()),
        ("memory" | "output", Value::Size(n, sep, unit)) => {
            let multiplier = match *unit {
                "B" => 1,
                "KB" => 1_000,
                "MB" => 1_000_000,
                "GB" => 1_000_000_000,
                "KiB" => 1 << 10,
                "MiB" => 1 << 20,
                "GiB" => 1 << 30,
                "TiB" => 1 << 40,
                _ => return Err(()),
            };
            if !matches!(*sep, "" | " ") {
                return Err(());
            }
            n.checked_mul(multiplier)
                .map(|b| Some(Parsed::Size(ByteSize(b))))
                .ok_or(())
        }
        ("memory" | "output", Value::Text(_)) => Ok(None),
        ("fuel", Value::Int(n, _)) => count(*n, u64::MAX),
        ("max" | "pids", Value::Int(n, _)) => count(*n, u64::from(u32::MAX)),
        ("cpus", Value::Float(x)) => Ok(Some(Parsed::Cpus(*x))),
        ("cpus", Value::Int(n, _)) => Ok(Some(Parsed::Cpus(*n as f64))),
        ("backends", Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::Text(s) if s == "wasm" => Ok(Backend::Wasm),
                Value::Text(s) if s == "docker" => Ok(Backend::Docker),
                _ => Err(()),
            })
            .collect::<Result<Vec<_>, ()>>()
            .map(|b| Some(Parsed::Backends(b))),
        ("guest", Value::Text(s)) => match s.as_str() {
            "plain" => Ok(Some(Parsed::Guest(GuestImage::Plain))),
            "prewarmed" => Ok(Some(Parsed::Guest(GuestImage::Prewarmed))),
            _ => Err(()),
        },
        ("image", Value::Text(s)) => Ok(Some(Parsed::Image(s.clone()))),
        // Sizes and durations written for another key are just strings there.
        (_, Value::Size(n, sep, unit)) => model(key, &Value::Text(format!("{n}{sep}{unit}"))),
        (_, Value::Duration(n, unit)) => model(key, &Value::Text(format!("{n}{unit}"))),
        _ => Err(()),
    }
}

/// Whether a parsed value is allowed, with the same bounds `Policy::validate` documents.
fn in_range(parsed: &Parsed, key: &str) -> bool {
    match (key, parsed) {
        ("wall-time", Parsed::Duration(d)) => {
            (Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(d)
        }
        ("memory", Parsed::Size(s)) => (ByteSize::mib(64)..=ByteSize::gib(64)).contains(s),
        ("output", Parsed::Size(s)) => (ByteSize::kib(1)..=ByteSize::gib(4)).contains(s),
        ("fuel", Parsed::Count(n)) => *n >= 1_000_000,
        ("max", Parsed::Count(n)) => (1..=20).contains(n),
        ("pids", Parsed::Count(n)) => (16..=65_536).contains(n),
        ("cpus", Parsed::Cpus(x)) => x.is_finite() && *x > 0.0 && *x <= 64.0,
        ("backends", Parsed::Backends(b)) => {
            !b.is_empty() && b.iter().enumerate().all(|(i, x)| !b[..i].contains(x))
        }
        ("guest", Parsed::Guest(_)) => true,
        ("image", Parsed::Image(s)) => !s.is_empty() && !s.chars().any(char::is_whitespace),
        (key, parsed) => unreachable!("{key} cannot hold {parsed:?}"),
    }
}

/// The value `policy` holds for `key`.
fn field(policy: &Policy, key: &str) -> Parsed {
    match key {
        "wall-time" => Parsed::Duration(policy.limits.wall_time),
        "memory" => Parsed::Size(policy.limits.memory),
        "fuel" => Parsed::Count(policy.limits.fuel),
        "output" => Parsed::Size(policy.limits.output),
        "max" => Parsed::Count(u64::from(policy.attempts.max)),
        "pids" => Parsed::Count(u64::from(policy.docker.pids)),
        "cpus" => Parsed::Cpus(policy.docker.cpus),
        "backends" => Parsed::Backends(policy.sandbox.backends.clone()),
        "guest" => Parsed::Guest(policy.sandbox.guest),
        "image" => Parsed::Image(policy.docker.image.clone()),
        other => unreachable!("no key {other}"),
    }
}

/// Checks what every accepted policy must satisfy, whoever wrote it.
fn obeys_the_bounds(policy: &Policy) -> Result<(), TestCaseError> {
    for (_, key) in KEYS {
        prop_assert!(
            in_range(&field(policy, key), key),
            "accepted out of range: {key} = {:?}",
            field(policy, key)
        );
    }
    prop_assert!(policy.validate(ORIGIN).is_ok());
    let json = serde_json::to_string(policy).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut back: Policy = serde_json::from_str(&json)
        .map_err(|e| TestCaseError::fail(format!("{json} does not read back: {e}")))?;
    // serde_json's default float parser (without its `float_roundtrip` feature) may read a
    // float back one unit in the last place off; every other value must come back exactly.
    let (cpus, read) = (policy.docker.cpus, back.docker.cpus);
    prop_assert!(
        cpus.to_bits().abs_diff(read.to_bits()) <= 1,
        "cpus {cpus} came back as {read}"
    );
    back.docker.cpus = cpus;
    prop_assert_eq!(&back, policy, "JSON round trip of {}", json);
    Ok(())
}

/// `TOML parse error at line N` must name a line of `text`, and show it.
fn points_into(message: &str, text: &str) -> Result<usize, TestCaseError> {
    let line: usize = message
        .split("at line ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| TestCaseError::fail(format!("no line number in {message}")))?;
    let count = text.lines().count();
    prop_assert!(
        (1..=count.max(1) + 1).contains(&line),
        "line {line} of a {count}-line text: {message}"
    );
    if let Some(shown) = text.lines().nth(line - 1) {
        let snippet = shown.trim_end();
        if snippet.chars().count() <= 40 {
            prop_assert!(
                message.contains(&format!("{line} | {snippet}")),
                "the message does not show line {line} ({snippet:?}): {message}"
            );
        }
    }
    Ok(line)
}

#[test]
fn documents_of_real_keys_parse_as_the_model_says() {
    check(512, &doc(), |doc| {
        let result = Policy::from_toml_str(&doc.text, ORIGIN);
        let defaults = Policy::default();
        // Per entry: `Err` wrong type, `Ok(None)` unknown, `Ok(Some(in range?))`.
        let mut models = Vec::new();
        let mut stray = None;
        for (i, (section, key, value)) in doc.entries.iter().enumerate() {
            if KEYS.contains(&(section, key.as_str())) {
                models.push((i, key.as_str(), model(key, value)));
            } else {
                stray = Some(i);
            }
        }
        let all_known_good = stray.is_none()
            && models.iter().all(|(_, key, m)| match m {
                Ok(Some(p)) => in_range(p, key),
                _ => false,
            });
        let some_bad_type = models.iter().any(|(_, _, m)| m.is_err());
        match result {
            Ok(policy) => {
                prop_assert!(stray.is_none(), "accepted an unknown key:\n{}", doc.text);
                prop_assert!(!some_bad_type, "accepted a bad value:\n{}", doc.text);
                obeys_the_bounds(&policy)?;
                for (_, key, m) in &models {
                    if let Ok(Some(want)) = m {
                        prop_assert_eq!(&field(&policy, key), want, "{}:\n{}", key, doc.text);
                    }
                }
                for (_, key) in KEYS {
                    if !models.iter().any(|(_, k, _)| *k == key) {
                        prop_assert_eq!(field(&policy, key), field(&defaults, key));
                    }
                }
            }
            Err(err) => {
                prop_assert!(
                    !all_known_good,
                    "refused a valid policy: {err}\n{}",
                    doc.text
                );
                let message = err.to_string();
                match &err {
                    PolicyError::Toml { origin, .. } => {
                        prop_assert_eq!(origin, ORIGIN);
                        prop_assert!(message.starts_with("cannot parse policy fuzz.toml: "));
                        let line = points_into(&message, &doc.text)?;
                        // The error must point at a value the model refuses or cannot predict,
                        // or at the unknown key (or its unknown section's header).
                        let mut suspects: Vec<usize> = models
                            .iter()
                            .filter(|(_, _, m)| !matches!(m, Ok(Some(_))))
                            .map(|(i, _, _)| doc.lines[*i])
                            .collect();
                        if let Some(i) = stray {
                            suspects.push(doc.lines[i]);
                            suspects.extend(doc.headers[i]);
                        }
                        prop_assert!(
                            suspects.contains(&line),
                            "{} points at line {}, not at one of {:?}:\n{}",
                            message,
                            line,
                            suspects,
                            doc.text
                        );
                    }
                    PolicyError::Invalid { origin, key, .. } => {
                        prop_assert_eq!(origin, ORIGIN);
                        prop_assert!(stray.is_none() && !some_bad_type, "{message}");
                        prop_assert!(message.contains(&format!("`{key}`")), "{message}");
                        // The first key, in validation order, that is out of range or unknown
                        // to the model.
                        let first = KEYS.iter().find_map(|(section, k)| {
                            let (_, _, m) = models.iter().find(|(_, mk, _)| mk == k)?;
                            match m {
                                Ok(Some(p)) if in_range(p, k) => None,
                                Ok(Some(_)) => Some((format!("{section}.{k}"), true)),
                                _ => Some((format!("{section}.{k}"), false)),
                            }
                        });
                        match first {
                            Some((name, true)) => prop_assert_eq!(key, &name, "{}", message),
                            Some((_, false)) => {}
                            None => prop_assert!(false, "no key is out of range: {message}"),
                        }
                    }
                    other => prop_assert!(false, "unexpected error kind: {other}"),
                }
            }
        }
        Ok(())
    });
}

/// The error of text that is not a policy starts the way the origin's errors do.
fn is_policy_error(err: &PolicyError, text: &str) -> Result<(), TestCaseError> {
    let message = err.to_string();
    match err {
        PolicyError::Toml { .. } => {
            prop_assert!(message.starts_with("cannot parse policy fuzz.toml: "));
            if message.contains("at line ") {
                points_into(&message, text)?;
            }
        }
        PolicyError::Invalid { key, .. } => {
            prop_assert!(
                KEYS.iter().any(|(s, k)| format!("{s}.{k}") == *key),
                "no key {key}: {message}"
            );
            prop_assert!(message.contains(&format!("`{key}`")), "{message}");
        }
        other => prop_assert!(false, "unexpected error kind: {other}"),
    }
    Ok(())
}

#[test]
fn arbitrary_text_never_panics() {
    let text = prop_oneof![
        any::<String>(),
        "\\PC{0,200}",
        // TOML-ish: brackets, equals signs, quotes and the real keys.
        prop::collection::vec(
            prop_oneof![
                prop::sample::select(vec![
                    "[limits]",
                    "[docker]",
                    "[[limits]]",
                    "[",
                    "]",
                    "=",
                    "\"",
                    "'",
                    "\n",
                    "memory",
                    "wall-time",
                    "fuel",
                    "max",
                    "backends",
                    "{",
                    "}",
                    ",",
                    ".",
                    "#",
                    "\"\"\"",
                    "0x",
                    "1e",
                    "nan",
                    "-",
                    "_",
                    " ",
                ])
                .prop_map(str::to_owned),
                "[a-z0-9]{1,4}",
            ],
            0..60,
        )
        .prop_map(|parts| parts.concat()),
    ];
    check(512, &text, |text| {
        match Policy::from_toml_str(&text, ORIGIN) {
            Ok(policy) => obeys_the_bounds(&policy)?,
            Err(err) => is_policy_error(&err, &text)?,
        }
        Ok(())
    });
}

#[test]
fn mangled_documents_never_panic() {
    let edit = prop_oneof![
        (any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(a, b)| (a, b, None)),
        (any::<prop::sample::Index>(), any::<char>()).prop_map(|(a, c)| (a, a, Some(c))),
    ];
    let mangled = (doc(), prop::collection::vec(edit, 1..4)).prop_map(|(doc, edits)| {
        let mut chars: Vec<char> = doc.text.chars().collect();
        for (from, to, insert) in edits {
            if chars.is_empty() {
                chars.extend(insert);
                continue;
            }
            let (a, b) = (from.index(chars.len()), to.index(chars.len()));
            let (a, b) = (a.min(b), a.max(b).min(a + 8));
            match insert {
                Some(c) => chars.insert(a, c),
                None => {
                    chars.drain(a..b);
                }
            }
        }
        chars.into_iter().collect::<String>()
    });
    check(512, &mangled, |text| {
        match Policy::from_toml_str(&text, ORIGIN) {
            Ok(policy) => obeys_the_bounds(&policy)?,
            Err(err) => is_policy_error(&err, &text)?,
        }
        Ok(())
    });
}
