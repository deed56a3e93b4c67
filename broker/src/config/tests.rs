//! Checks that the declarations, `--help` and docs/stompbox.example.toml agree.

use clap::{Args, Command};

use super::{FileLayer, Settings};

/// The settings' command line alone, as `cli` flattens it.
fn command() -> Command {
    Settings::augment_args(Command::new("stompbox"))
}

/// Every key the example file shows: active lines as they are, `# key = value` lines of a
/// setting uncommented (they document a value without setting it).
fn example_uncommented() -> (String, Vec<&'static str>) {
    let text = include_str!("../../../docs/stompbox.example.toml");
    let mut commented = Vec::new();
    let mut lines = Vec::new();
    for line in text.lines() {
        let setting = line.strip_prefix("# ").and_then(|rest| {
            let (key, _) = rest.split_once(" = ")?;
            let key = Settings::keys().find(|known| *known == key.trim())?;
            // Prose that happens to start like a setting does not parse as TOML.
            toml::from_str::<toml::Table>(rest).ok()?;
            Some((key, rest))
        });
        match setting {
            Some((key, rest)) => {
                commented.push(key);
                lines.push(rest);
            }
            None => lines.push(line),
        }
    }
    (lines.join("\n"), commented)
}

#[test]
fn example_config_lists_every_key_with_its_default() {
    let (text, commented) = example_uncommented();
    let file: FileLayer = toml::from_str(&text).expect("example parses, commented keys included");
    let expected = Settings::defaults().shown();
    let mut documented = file.settings.shown();
    // A setting with no default (a secret, a URL that turns a feature on) is documented by
    // a commented-out example value.
    for (key, value) in &mut documented {
        let unset_by_default = expected.contains(&(*key, Some(None)));
        if commented.contains(key) && unset_by_default {
            *value = Some(None);
        }
    }
    let missing: Vec<_> = documented
        .iter()
        .filter(|(_, value)| value.is_none())
        .map(|(key, _)| key)
        .collect();
    assert!(missing.is_empty(), "the example file lacks {missing:?}");
    let wrong: Vec<_> = documented
        .iter()
        .zip(&expected)
        .filter(|(documented, expected)| documented != expected)
        .map(|(documented, expected)| format!("{documented:?} should be {expected:?}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "example values that are not the defaults: {wrong:#?}"
    );
    assert!(
        text.contains("[[acl]]"),
        "the example documents [[acl]] rules"
    );
}

#[test]
fn every_setting_has_its_flag_and_env_var_in_help() {
    let help = command().render_long_help().to_string();
    for key in Settings::keys() {
        let flag = format!("--{}", key.replace('_', "-"));
        let env = format!("STOMPBOX_{}", key.to_ascii_uppercase());
        assert!(help.contains(&flag), "help lacks {flag}");
        assert!(help.contains(&env), "help lacks {env}");
    }
}

#[test]
fn help_shows_defaults_taken_from_the_values() {
    let help = command().render_long_help().to_string();
    for (key, default) in Settings::defaults().shown() {
        let Some(Some(default)) = default else {
            continue;
        };
        let flag = format!("--{}", key.replace('_', "-"));
        let entry = help
            .split("\n      --")
            .find(|entry| {
                entry
                    .strip_prefix(&flag[2..])
                    .is_some_and(|rest| rest.starts_with([' ', '[']))
            })
            .unwrap_or_else(|| panic!("help lacks {flag}"));
        assert!(
            entry.contains(&format!("[default: {default}]")),
            "{flag} should show [default: {default}]:\n{entry}"
        );
    }
}

#[test]
fn file_keys_are_unique() {
    let mut keys: Vec<_> = Settings::file_keys().collect();
    let count = keys.len();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), count, "two settings share a key or alias");
}
