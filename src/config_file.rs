//! The configuration file (`--config hubbub.toml`, `HUBBUB_CONFIG`): a flat
//! TOML table whose keys are the long flag names with `_` for `-` (the
//! `HUBBUB_*` variable names, lower-cased, without the prefix).
//!
//! Precedence, highest first: a flag on the command line, its `HUBBUB_*`
//! environment variable, the configuration file, the built-in default. The
//! file is applied by handing its values to clap as extra flags for every
//! setting that the command line and the environment left at its default,
//! so a value from the file goes through exactly the same parser (and the
//! same range checks) as the flag. Unknown keys are refused, naming the key.
//!
//! Also here: `hubbub config check` (the effective settings, secrets
//! redacted) and `hubbub config example` (the commented example file,
//! `deploy/hubbub.example.toml`, generated from the flag definitions).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches};

use crate::config::Cli;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Bad flags (or `--help`/`--version`): clap's own report.
    #[error("{0}")]
    Cli(#[from] clap::Error),
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not valid TOML.
    #[error("{path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    /// A key that is no setting.
    #[error(
        "{path}: unknown setting `{key}` (settings are the long flag names with `_` for `-`; `hubbub config example` lists them)"
    )]
    UnknownKey { path: PathBuf, key: String },
    /// A value the setting's parser refuses (clap's report names the flag).
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    /// A value of a type no setting takes (a table, a date, a nested list).
    #[error("{path}: setting `{key}`: {message}")]
    BadValue { path: PathBuf, key: String, message: String },
}

/// Arguments of the serving configuration that are not settings.
const NOT_SETTINGS: &[&str] = &["help", "version", "config_file", "file"];

/// Parses the command line, the environment and the configuration file
/// (if `--config`/`HUBBUB_CONFIG`, or `hubbub config check FILE`, names one).
pub fn load(args: Vec<OsString>) -> Result<Cli, ConfigError> {
    let matches = Cli::command().try_get_matches_from(&args)?;
    let (path, names) = leaf(&matches);
    let Some(path) = path else {
        return Ok(Cli::from_arg_matches(&matches)?);
    };
    let leaf_cmd = leaf_command(&names);
    let leaf_matches = leaf_matches(&matches);
    let extra = file_args(&path, &leaf_cmd, leaf_matches)?;
    let mut all = args;
    all.extend(extra);
    let matches = Cli::command().try_get_matches_from(&all).map_err(|e| ConfigError::Invalid {
        path: path.clone(),
        message: e.render().to_string().trim_end().to_owned(),
    })?;
    Ok(Cli::from_arg_matches(&matches)?)
}

/// The configuration file the leaf subcommand names, and the subcommand path.
fn leaf(m: &ArgMatches) -> (Option<PathBuf>, Vec<String>) {
    let mut names = Vec::new();
    let mut cur = m;
    while let Some((name, sub)) = cur.subcommand() {
        names.push(name.to_owned());
        cur = sub;
    }
    let get = |id: &str| cur.try_get_one::<PathBuf>(id).ok().flatten().cloned();
    (get("file").or_else(|| get("config_file")), names)
}

fn leaf_matches(m: &ArgMatches) -> &ArgMatches {
    let mut cur = m;
    while let Some((_, sub)) = cur.subcommand() {
        cur = sub;
    }
    cur
}

fn leaf_command(names: &[String]) -> clap::Command {
    let mut cmd = Cli::command();
    cmd.build();
    for n in names {
        match cmd.find_subcommand(n) {
            Some(c) => cmd = c.clone(),
            None => break,
        }
    }
    cmd
}

/// The flags that carry the file's values for settings still at their default.
fn file_args(path: &Path, cmd: &clap::Command, m: &ArgMatches) -> Result<Vec<OsString>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    let table: toml::Table =
        text.parse().map_err(|e: toml::de::Error| ConfigError::Syntax { path: path.into(), message: e.to_string() })?;
    let mut out = Vec::new();
    let serve = leaf_command(&["serve".to_owned()]);
    for (key, value) in &table {
        let unknown = || ConfigError::UnknownKey { path: path.into(), key: key.clone() };
        let long = key.replace('_', "-");
        // Only serving settings: a subcommand's own flags (`--force`) are not file keys.
        settings(&serve).find(|a| a.get_long() == Some(&long)).ok_or_else(unknown)?;
        let arg = settings(cmd).find(|a| a.get_long() == Some(&long)).ok_or_else(unknown)?;
        let bad =
            |message: &str| ConfigError::BadValue { path: path.into(), key: key.clone(), message: message.into() };
        let text = scalar_list(value).map_err(|m| bad(&m))?;
        if matches!(m.value_source(arg.get_id().as_str()), Some(ValueSource::CommandLine | ValueSource::EnvVariable)) {
            continue;
        }
        let long = arg.get_long().unwrap_or_default();
        match arg.get_action() {
            ArgAction::SetTrue => match value.as_bool() {
                Some(true) => out.push(format!("--{long}").into()),
                Some(false) => {}
                None => return Err(bad("expected true or false")),
            },
            _ if text.is_empty() && arg.get_value_delimiter().is_some() => {}
            _ => out.push(format!("--{long}={text}").into()),
        }
    }
    Ok(out)
}

/// A TOML scalar, or a list of scalars joined with `,`, as flag text.
fn scalar_list(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::Array(items) => {
            let parts: Result<Vec<String>, String> = items.iter().map(scalar).collect();
            Ok(parts?.join(","))
        }
        v => scalar(v),
    }
}

fn scalar(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        _ => Err("expected a string, number, boolean or a list of them".into()),
    }
}

/// The serving settings of a command (every flag of [`crate::config::Config`]).
fn settings(cmd: &clap::Command) -> impl Iterator<Item = &clap::Arg> {
    cmd.get_arguments().filter(|a| a.get_long().is_some() && !NOT_SETTINGS.contains(&a.get_id().as_str()))
}

/// The TOML key of a setting.
fn key_of(arg: &clap::Arg) -> String {
    arg.get_long().unwrap_or_default().replace('-', "_")
}

/// `hubbub config check`: every setting with its effective value and where
/// it came from, as TOML; secrets (passwords in URLs) redacted.
pub fn effective(args: Vec<OsString>) -> Result<String, ConfigError> {
    load(args.clone())?; // the same checks as serving
    let first = Cli::command().try_get_matches_from(&args)?;
    let (path, names) = leaf(&first);
    let cmd = leaf_command(&names);
    let mut all = args;
    if let Some(p) = &path {
        all.extend(file_args(p, &cmd, leaf_matches(&first))?);
    }
    let matches = Cli::command().try_get_matches_from(&all)?;
    let m = leaf_matches(&matches);
    let mut out = String::new();
    if let Some(p) = &path {
        let _ = writeln!(out, "# configuration file: {}", p.display());
    }
    for arg in settings(&cmd) {
        let id = arg.get_id().as_str();
        let raw: Vec<String> =
            m.get_raw(id).map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect()).unwrap_or_default();
        let source = match m.value_source(id) {
            Some(ValueSource::CommandLine) if was_from_file(arg, &first) => "file",
            Some(ValueSource::CommandLine) => "flag",
            Some(ValueSource::EnvVariable) => "env",
            _ => "default",
        };
        if raw.is_empty() && arg.get_value_delimiter().is_none() && !matches!(arg.get_action(), ArgAction::SetTrue) {
            let _ = writeln!(out, "# {} is unset  # {source}", key_of(arg));
            continue;
        }
        let value = render(arg, &raw.iter().map(|s| redact(s)).collect::<Vec<_>>());
        let _ = writeln!(out, "{} = {value}  # {source}", key_of(arg));
    }
    Ok(out)
}

/// A value given by the file was passed as a flag after the command line's own.
fn was_from_file(arg: &clap::Arg, first: &ArgMatches) -> bool {
    !matches!(leaf_matches(first).value_source(arg.get_id().as_str()), Some(ValueSource::CommandLine))
}

/// A setting's value as TOML.
fn render(arg: &clap::Arg, raw: &[String]) -> String {
    if matches!(arg.get_action(), ArgAction::SetTrue) {
        return raw.first().map_or("false".into(), |v| if v == "true" { "true".into() } else { "false".into() });
    }
    let one = |s: &str| {
        if s.parse::<i64>().is_ok() || s.parse::<f64>().is_ok_and(f64::is_finite) {
            s.to_owned()
        } else {
            toml::Value::String(s.to_owned()).to_string()
        }
    };
    if arg.get_value_delimiter().is_some() {
        let parts: Vec<String> = raw.iter().flat_map(|s| s.split(',')).map(&one).collect();
        format!("[{}]", parts.join(", "))
    } else {
        raw.first().map_or_else(String::new, |s| one(s))
    }
}

/// Hides the password of a URL (`redis://user:secret@host` -> `redis://user:***@host`).
pub fn redact(value: &str) -> String {
    let Some((scheme, rest)) = value.split_once("://") else { return value.to_owned() };
    let Some((userinfo, host)) = rest.split_once('@') else { return value.to_owned() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => format!("{scheme}://***@{host}"),
    }
}

/// `hubbub config example`: every setting, its help text, flag, variable
/// and default, commented out. `deploy/hubbub.example.toml` is this text
/// (a test keeps them equal).
pub fn example() -> String {
    let mut cmd = leaf_command(&["serve".to_owned()]);
    cmd.build();
    let mut out = String::from(EXAMPLE_HEADER);
    for arg in settings(&cmd) {
        let help = arg.get_long_help().or(arg.get_help()).map(|h| h.to_string()).unwrap_or_default();
        out.push('\n');
        for line in wrap(&help, 76) {
            let _ = writeln!(out, "# {line}");
        }
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
        let _ = writeln!(out, "# flag: --{}  env: {env}", arg.get_long().unwrap_or_default());
        let defaults: Vec<String> = arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
        let value = if matches!(arg.get_action(), ArgAction::SetTrue) {
            "false".to_owned()
        } else if defaults.is_empty() && arg.get_value_delimiter().is_some() {
            "[]".to_owned()
        } else if defaults.is_empty() {
            let _ = writeln!(out, "# (no default: unset)");
            "\"\"".to_owned()
        } else {
            render(arg, &defaults)
        };
        let _ = writeln!(out, "#{} = {value}", key_of(arg));
    }
    out.lines().map(str::trim_end).collect::<Vec<_>>().join("\n") + "\n"
}

/// `text` as lines of at most `width` characters (words kept whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.lines() {
        let mut line = String::new();
        for word in para.split_whitespace() {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

const EXAMPLE_HEADER: &str = "\
# hubbub configuration file: every setting with its default, commented out.
# Use it with `hubbub --config hubbub.toml` (or HUBBUB_CONFIG=hubbub.toml);
# check it with `hubbub config check hubbub.toml`.
#
# Precedence, highest first: command-line flag > HUBBUB_* environment
# variable > this file > built-in default. Keys are the long flag names with
# `_` for `-`; an unknown key is an error. Lists are TOML arrays.
#
# Generated by `hubbub config example`; a test keeps it equal to the flags.
";
