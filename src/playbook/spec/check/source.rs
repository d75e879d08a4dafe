//! Checks of `source.opensearch`: the cluster's URL (no credentials in it), the index, the
//! format it holds, where the credentials are read, the timeout.

use std::time::Duration;

use super::super::model::{RawAuth, RawOpenSearch};
use super::super::{Auth, OpenSearchSource, Secret};
use crate::playbook::record::format::Format;

/// The default of `source.opensearch.timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

pub fn opensearch(raw: &RawOpenSearch, format: Option<Format>) -> Result<OpenSearchSource, String> {
    match format {
        Some(Format::Suricata | Format::Zeek) => {}
        Some(Format::Ndjson) => return Err("`format: ndjson` cannot be searched in a cluster (its fields have no known meaning there); give `format: suricata` or `format: zeek`".into()),
        None => return Err("needs `source.format` (`suricata` or `zeek`): an index holds one kind of log, and the query is translated for it".into()),
    }
    let url = raw.url.trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("`url: {url}` must start with https:// (or http://)"))?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.contains('@') {
        return Err("`url` holds user information; credentials never go in the playbook: use `auth.basic.password_file` (or `_env`) or `auth.api_key_file` (or `_env`)".into());
    }
    if authority.is_empty() || url.contains(['?', '#', ' ']) {
        return Err(format!(
            "`url: {url}` is not a cluster address; write it like https://search.example.org:9200"
        ));
    }
    let index = raw.index.trim();
    if index.is_empty()
        || index.starts_with(['_', '-', '+'])
        || index.contains(['/', '\\', '?', '#', ' ', '"', '<', '>', '|'])
    {
        return Err(format!("`index: {index}` is not an index name or pattern; write it like `suricata-*` or `zeek-conn,zeek-conn-old`"));
    }
    let timeout = match &raw.timeout {
        None => DEFAULT_TIMEOUT,
        Some(t) => humantime::parse_duration(t)
            .ok()
            .filter(|d| !d.is_zero() && *d <= Duration::from_secs(3600))
            .ok_or_else(|| {
                format!("`timeout: {t}` is not a duration of 1 s to 1 h; write it like 30s")
            })?,
    };
    if let Some(f) = &raw.time_field {
        if f.trim().is_empty() {
            return Err(
                "`time_field` is empty; name the date field of the index, e.g. `@timestamp`".into(),
            );
        }
    }
    Ok(OpenSearchSource {
        url: url.to_string(),
        index: index.to_string(),
        time_field: raw.time_field.clone(),
        auth: raw.auth.as_ref().map_or(Ok(Auth::None), auth)?,
        ca_file: raw.ca_file.clone(),
        timeout,
    })
}

fn secret(file: &Option<String>, env: &Option<String>, what: &str) -> Result<Secret, String> {
    match (file, env) {
        (Some(f), None) if !f.trim().is_empty() => Ok(Secret::File(f.clone())),
        (None, Some(e)) if !e.is_empty() && e.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => Ok(Secret::Env(e.clone())),
        (None, Some(e)) => Err(format!("`{what}_env: {e}` is not an environment variable name (A-Z, 0-9, _)")),
        _ => Err(format!("give exactly one of `{what}_file` (a file holding it) and `{what}_env` (a variable holding it)")),
    }
}

fn auth(raw: &RawAuth) -> Result<Auth, String> {
    match (&raw.basic, raw.api_key_file.is_some() || raw.api_key_env.is_some()) {
        (Some(b), false) => {
            if b.user.is_empty() || b.user.contains(':') {
                return Err("`auth.basic.user` must be a non-empty name without `:`".into());
            }
            Ok(Auth::Basic {
                user: b.user.clone(),
                password: secret(&b.password_file, &b.password_env, "auth.basic.password")?,
            })
        }
        (None, true) => Ok(Auth::ApiKey(secret(&raw.api_key_file, &raw.api_key_env, "auth.api_key")?)),
        _ => Err("`auth` takes exactly one of `basic: {user, password_file}` and `api_key_file` (or their `_env` forms)".into()),
    }
}

#[cfg(test)]
mod tests {
    use crate::playbook::spec::check::parse_playbook;
    use crate::playbook::spec::{Auth, Secret};

    fn source(body: &str) -> Result<crate::playbook::spec::Source, String> {
        let text = format!("name: s\nschedule: {{interval_minutes: 5}}\nsource:\n{body}\n");
        parse_playbook(&text).map(|p| p.source).map_err(|p| {
            p.iter()
                .map(|p| p.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    #[test]
    fn a_full_cluster_source_is_read_with_its_credentials_named_not_held() {
        let s = source("  format: suricata\n  opensearch:\n    url: https://search.example.org:9200/\n    index: suricata-*\n    time_field: \"@timestamp\"\n    auth: {basic: {user: hunt, password_file: secrets/os.pw}}\n    ca_file: ca.pem\n    timeout: 10s").unwrap();
        let os = s.opensearch.unwrap();
        assert_eq!(os.url, "https://search.example.org:9200");
        assert_eq!(os.time_field.as_deref(), Some("@timestamp"));
        assert_eq!(os.timeout, std::time::Duration::from_secs(10));
        assert_eq!(
            os.auth,
            Auth::Basic {
                user: "hunt".into(),
                password: Secret::File("secrets/os.pw".into())
            }
        );
        let s = source("  format: zeek\n  opensearch: {url: http://127.0.0.1:9200, index: zeek, auth: {api_key_env: OS_KEY}}").unwrap();
        assert_eq!(
            s.opensearch.unwrap().auth,
            Auth::ApiKey(Secret::Env("OS_KEY".into()))
        );
    }

    #[test]
    fn credentials_in_the_text_and_ambiguous_sources_are_refused() {
        let e =
            source("  format: suricata\n  opensearch: {url: \"https://u:pw@h:9200\", index: x}")
                .unwrap_err();
        assert!(e.contains("credentials never go in the playbook"), "{e}");
        let e = source("  format: suricata\n  opensearch: {url: https://h, index: x, auth: {basic: {user: u, password: pw}}}").unwrap_err();
        assert!(e.contains("password"), "{e}");
        let e = source("  opensearch: {url: https://h, index: x}").unwrap_err();
        assert!(e.contains("needs `source.format`"), "{e}");
        let e =
            source("  paths: [a.log]\n  format: zeek\n  opensearch: {url: https://h, index: x}")
                .unwrap_err();
        assert!(e.contains("both `paths` and `opensearch`"), "{e}");
        let e = source("  format: zeek\n  opensearch: {url: https://h, index: x, auth: {basic: {user: u, password_file: a, password_env: B}}}").unwrap_err();
        assert!(e.contains("exactly one of"), "{e}");
        let e =
            source("  format: zeek\n  opensearch: {url: https://h, index: \"a b\"}").unwrap_err();
        assert!(e.contains("not an index name"), "{e}");
        let text = "name: s\nschedule: {realtime: {lookback: 10m}}\nsource:\n  format: zeek\n  opensearch: {url: https://h, index: x}\n";
        let e = parse_playbook(text).unwrap_err()[0].message.clone();
        assert!(e.contains("a cluster cannot be followed"), "{e}");
    }
}
